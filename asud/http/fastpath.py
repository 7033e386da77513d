"""The hot paths, answered before Klein's routing: ``GET``/``HEAD /api/v1/build/<hash>`` of a finished
build, and a ``POST /api/v1/build`` repeating a request whose image is built (a cache hit).

Clients poll a finished build again and again (every LuCI, owut and Firmware Selector download starts
with one), and routers re-POST the same request; the answers sit pre-rendered in :attr:`AsudApp.finished`.
The root asks :meth:`FastPath.answer` first; it sends those bytes — with the CORS headers every answer
under ``/api/`` carries, a cache-hit POST counted in the statistics by the very function the route uses —
at the speed of a bare ``Resource``. Anything else (a miss, a queued build, an invalid body,
``?status_in_body=1``, rate limiting switched on, a body over the limit) returns ``None`` and takes the
full way, so the behaviour is the route's in every case.
"""

from __future__ import annotations

import re

from twisted.web.iweb import IRequest

from asud.http.build_answers import RenderedBuild
from asud.http.state import AsudApp

__all__ = ["POST_ROUTE", "ROUTE", "FastPath"]

#: The route templates these answers are counted under (the same as the routes').
ROUTE = "/api/v1/build/{request_hash}"
POST_ROUTE = "/api/v1/build"
_HASH = re.compile(rb"[0-9a-f]{64}")
_BUILD = [b"api", b"v1", b"build"]


class FastPath:
    """Pre-rendered answers for the root resource (see the module docstring)."""

    def __init__(self, app: AsudApp) -> None:
        self.app = app

    def answer(self, request: IRequest, segments: list[bytes]) -> bytes | None:
        """The whole answer written into ``request`` (headers set, body returned), or ``None``."""
        method = request.method
        if method in (b"GET", b"HEAD"):
            if len(segments) != 4 or segments[:3] != _BUILD or not _HASH.fullmatch(segments[3]):
                return None
            rendered = self.app.finished.get(segments[3].decode("ascii"))
        elif method == b"POST" and segments == _BUILD:
            rendered = self._cache_hit(request)
        else:
            return None
        if rendered is None or b"status_in_body" in request.uri:
            return None
        request.setResponseCode(rendered.status_code)
        set_header = request.responseHeaders.setRawHeaders
        for name, value in rendered.wire_headers:
            set_header(name, [value])
        return b"" if method == b"HEAD" else rendered.body

    def route_of(self, request: IRequest) -> str:
        return POST_ROUTE if request.method == b"POST" else ROUTE

    def _cache_hit(self, request: IRequest) -> RenderedBuild | None:
        app = self.app
        if app.rate_limits is not None or getattr(request, "body_too_large", False):
            return None  # the route must count this request / the root answers 413
        content_type = request.getHeader(b"content-type") or b""
        if not content_type.startswith(b"application/json"):
            return None
        content = getattr(request, "content", None)
        if content is None:
            return None
        body = content.read(app.config.http.max_body_bytes + 1)
        content.seek(0)
        if len(body) > app.config.http.max_body_bytes:
            return None
        try:
            from asud.http.build import answer_cache_hit
        except ModuleNotFoundError:  # the build surface is not there (a partial app): the route decides
            return None
        user_agent = request.getHeader(b"user-agent")
        return answer_cache_hit(app, body, user_agent.decode("latin-1") if user_agent else None)
