"""The error hierarchy: one base that knows its HTTP status, domain subclasses that carry context.

``AsudError``
 ├── ``BadRequest`` (400)            malformed or unsupported request (unknown version/target/profile, …)
 │    └── ``DefaultsRejected``        ``defaults`` disabled or too long
 ├── ``NotFound`` (404)
 ├── ``UnknownPackages`` (422 legacy / 400 v1)  names not in any index; carries the names and suggestions
 ├── ``PackageConflict`` (400)       the selection cannot be installed together; carries the reason
 ├── ``Overloaded`` (529)            queue over its limit
 ├── ``RateLimited`` (429)           one client over its build-request rate or its queued-build bound
 ├── ``Unavailable`` (503)           a dependency (Redis, the catalog) is briefly unavailable; retry
 ├── ``UpstreamError`` (502)         the download server failed or sent something we refuse
 │    └── ``SignatureError``          bad signature or checksum: nothing from it is stored
 └── ``BuildError`` (500)            a build failed; carries stdout/stderr
      ├── ``RevisionMismatch``        IB revision ≠ requested ``version_code``
      ├── ``ImageTooBig``             "Error: Selected packages exceed device storage"
      └── ``SandboxError``            the sandbox is missing, timed out or hit a limit

The API has one handler that turns any of these into ``{"status": …, "detail": "…"}``.
"""

from __future__ import annotations


class AsudError(Exception):
    """Base of every error asud raises on purpose; ``status_code`` is what the API answers."""

    status_code: int = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(AsudError):
    status_code = 400


class DefaultsRejected(BadRequest):
    """``defaults`` sent while disabled, or longer than the limit (the 2017 API answers 420)."""


class NotFound(AsudError):
    status_code = 404


class UnknownPackages(AsudError):
    """Requested packages that no index of the version knows."""

    status_code = 400

    def __init__(self, names: list[str], suggestions: dict[str, list[str]] | None = None) -> None:
        self.names = names
        self.suggestions = suggestions or {}
        parts = []
        for name in names:
            hint = self.suggestions.get(name)
            parts.append(f"{name} (did you mean {', '.join(hint)}?)" if hint else name)
        super().__init__(f"Unknown package(s): {', '.join(parts)}")


class PackageConflict(AsudError):
    """The selection cannot be installed together (conflicts, unsatisfiable dependencies)."""

    status_code = 400


class Overloaded(AsudError):
    status_code = 529


class RateLimited(AsudError):
    """One client asked for too many builds (per minute, or queued at once); ``retry_after`` in seconds."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class Unavailable(AsudError):
    """A dependency is briefly unavailable (Redis restarting, the catalog still loading, a network blip):
    the client should retry."""

    status_code = 503


class UpstreamError(AsudError):
    """The download server failed, or answered with something that cannot be used."""

    status_code = 502


class SignatureError(UpstreamError):
    """A file's signature or checksum does not verify; nothing read from it may be used."""


class BuildError(AsudError):
    """A build failed; ``stdout``/``stderr`` hold what the ImageBuilder printed."""

    status_code = 500

    def __init__(self, detail: str, stdout: str = "", stderr: str = "") -> None:
        super().__init__(detail)
        self.stdout = stdout
        self.stderr = stderr


class RevisionMismatch(BuildError):
    pass


class ImageTooBig(BuildError):
    pass


class SandboxError(BuildError):
    pass
