"""Errors of the upstream stage, below ``asud.errors.UpstreamError`` so the API answers them as 502.

``UpstreamError`` (502)
 ├── ``UpstreamHTTPError``      the server answered with an error status; ``upstream_status`` holds it
 │    └── ``UpstreamNotFound``   the file does not exist upstream (HTTP 404, or a missing local file)
 └── ``UpstreamFormatError``    a file arrived but does not parse as the format it should have
"""

from __future__ import annotations

from asud.errors import UpstreamError


class UpstreamHTTPError(UpstreamError):
    """The download server answered ``upstream_status`` (4xx, or 5xx after every retry)."""

    def __init__(self, detail: str, upstream_status: int, url: str = "") -> None:
        super().__init__(detail)
        self.upstream_status = upstream_status
        self.url = url


class UpstreamNotFound(UpstreamHTTPError):
    """The file is not there; callers often treat this as "skip", unlike other failures."""


class UpstreamFormatError(UpstreamError):
    """An upstream file does not have the shape its format requires."""
