"""The hot paths, answered before Klein's routing: ``GET``/``HEAD /api/v1/build/<hash>`` of a finished
build, a ``POST /api/v1/build`` repeating a request whose image is built (a cache hit), and ``GET``/``HEAD
/store/<bin_dir>/<name>`` of a stored file (every image download).

Clients poll a finished build again and again (every LuCI, owut and Firmware Selector download starts
with one), and routers re-POST the same request; the answers sit pre-rendered in :attr:`AsudApp.finished`.
The root asks :meth:`FastPath.answer` first; it sends those bytes — with the CORS headers every answer
under ``/api/`` carries, a cache-hit POST counted in the statistics by the very function the route uses —
at the speed of a bare ``Resource``. Anything else (a miss, a queued build, an invalid body,
``?status_in_body=1``, rate limiting switched on, a body over the limit) returns ``None`` and takes the
full way, so the behaviour is the route's in every case.

A stored file is opened with :meth:`asud.store.files.Store.open_file` (names checked lexically, one open,
nothing reached through a symlink) and sent by :func:`asud.http.files.send_descriptor` with the CORS headers
the root adds under ``/store/``: the headers and bytes of ``asud.http.store``'s route. Whatever that opener
refuses (a bad name, a missing file, a symlink) takes the full way, which answers the 404 or follows the
route's own rules.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET

from asud.errors import NotFound
from asud.http.build_answers import RenderedBuild
from asud.http.files import send_descriptor
from asud.http.responses import CORS_HEADERS
from asud.http.state import AsudApp
from asud.http.store import media_type_of

__all__ = ["POST_ROUTE", "ROUTE", "STORE_ROUTE", "FastPath"]

log = Logger()

#: The route templates these answers are counted under (the same as the routes').
ROUTE = "/api/v1/build/{request_hash}"
POST_ROUTE = "/api/v1/build"
STORE_ROUTE = "/store/{bin_dir}/{name}"
_BUILD = [b"api", b"v1", b"build"]
_STORE = b"store"


class FastPath:
    """Pre-rendered answers for the root resource (see the module docstring)."""

    def __init__(self, app: AsudApp) -> None:
        self.app = app

    def answer(self, request: IRequest, segments: list[bytes]) -> bytes | int | None:
        """The answer written into ``request`` (headers set, body returned, or ``NOT_DONE_YET`` while a
        file is sent), or ``None``: the root takes the full way."""
        method = request.method
        if method in (b"GET", b"HEAD"):
            if len(segments) == 3 and segments[0] == _STORE:
                return self._stored_file(request, segments[1], segments[2])
            if len(segments) != 4 or len(segments[3]) != 64 or segments[:3] != _BUILD:
                return None
            # Keys are lowercase hex hashes, so any other segment misses (latin-1 decodes every byte).
            rendered = self.app.finished.get(segments[3].decode("latin-1"))
        elif method == b"POST" and segments == _BUILD:
            rendered = self._cache_hit(request)
        else:
            return None
        if rendered is None or b"status_in_body" in request.uri:
            return None
        if rendered.status_code != 200:  # 200 is every request's code until set
            request.setResponseCode(rendered.status_code)
        set_header = request.responseHeaders.setRawHeaders
        for name, value in rendered.wire_headers:
            set_header(name, [value])
        return b"" if method == b"HEAD" else rendered.body

    def route_of(self, request: IRequest) -> str:
        """The route template of an answer :meth:`answer` gave (its metric label)."""
        if request.method == b"POST":
            return POST_ROUTE
        postpath = request.postpath
        return STORE_ROUTE if postpath and postpath[0] == _STORE else ROUTE

    def _stored_file(self, request: IRequest, bin_dir: bytes, name: bytes) -> bytes | int | None:
        if b"status_in_body" in request.uri or self._has_large_body(request):
            return None  # the root's own rules answer these
        try:
            file_name = name.decode("ascii")
            descriptor, size = self.app.files.open_file(bin_dir.decode("ascii"), file_name)
        except (NotFound, UnicodeDecodeError):
            return None  # the route answers the 404 (or serves what only its rules allow)
        for header, value in CORS_HEADERS:
            request.setHeader(header, value)
        sent = send_descriptor(request, descriptor, size, media_type_of(file_name))
        if isinstance(sent, bytes):
            return sent

        def finish(complete: bool) -> None:
            if complete:
                request.finish()

        def failed(failure: Failure) -> None:
            if not failure.check(CancelledError):
                # A read error after the headers went out: cut the answer short rather than send a body
                # of the wrong length; the client sees a truncated download and retries.
                log.failure("GET {path}: reading the stored file failed", failure, path=request.path)
                request.loseConnection()

        sent.addCallbacks(finish, failed)
        # The transport stops the producer when the connection closes; a host program's transport might
        # only tell the request.
        request.notifyFinish().addErrback(lambda _: sent.cancel())
        return NOT_DONE_YET

    def _has_large_body(self, request: IRequest) -> bool:
        """Over ``[http] max_body_bytes``: the root answers 413 (``asud.http.root``)."""
        if getattr(request, "body_too_large", False):
            return True
        content = getattr(request, "content", None)
        if content is None:
            return False
        position = content.tell()
        size: int = content.seek(0, 2)
        content.seek(position)
        return size > self.app.config.http.max_body_bytes

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
