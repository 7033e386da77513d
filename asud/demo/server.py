"""Serve a generated download tree over HTTP like a static mirror (downloads.openwrt.org does the same).

GET and HEAD of any file below the root, dot files included (``.versions.json``, ``.targets.json``), with
``ETag``, ``Last-Modified`` and ``Content-Length``; ``If-None-Match`` (which wins) and ``If-Modified-Since``
answer 304, which is what the catalog's conditional refresh relies on. Directories, paths that leave the
root and missing files are 404; other methods 405. No directory listings, no ranges.

``serve_tree`` listens on a Twisted endpoint string in the caller's reactor (``asud demo``, tests);
``asud demo-upstream serve`` runs it as a process of its own.
"""

from __future__ import annotations

import email.utils
import hashlib
import mimetypes
import os
from pathlib import Path
from typing import IO, Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IAddress, IListeningPort
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

__all__ = ["DemoTreeResource", "base_url", "make_site", "serve_tree"]

_NOT_FOUND = b"Not Found"


def _etag(stat: os.stat_result) -> str:
    """A strong validator from modification time and size (as Starlette's and nginx's static files)."""
    digest = hashlib.md5(f"{stat.st_mtime}-{stat.st_size}".encode(), usedforsecurity=False).hexdigest()
    return f'"{digest}"'


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _matches(header: str, etag: str) -> bool:
    """``If-None-Match`` compares weakly: ``W/"x"`` matches ``"x"``; ``*`` matches anything."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _not_modified_since(header: str, mtime: float) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    return int(mtime) <= since.timestamp()


class DemoTreeResource(Resource):
    """The files below ``root``; every path is resolved by this one leaf resource."""

    isLeaf = True

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root).resolve()

    def render(self, request: Request) -> bytes | int:
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"allow", b"GET, HEAD")
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"Method Not Allowed"
        return super().render(request)  # type: ignore[no-any-return]

    def _file(self, request: Request) -> Path | None:
        parts = [part.decode("utf-8", "replace") for part in request.postpath]
        if any(part in ("..", ".") or "/" in part or "\0" in part for part in parts):
            return None
        path = self.root.joinpath(*[part for part in parts if part])
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(self.root) or not resolved.is_file():
            return None
        return resolved

    def render_GET(self, request: Request) -> bytes | int:
        path = self._file(request)
        if path is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return _NOT_FOUND
        try:
            stream = path.open("rb")
            stat = os.fstat(stream.fileno())
        except OSError:
            request.setResponseCode(404)
            return _NOT_FOUND
        etag = _etag(stat)
        request.setHeader(b"etag", etag.encode())
        request.setHeader(b"last-modified", _http_date(stat.st_mtime).encode())
        if_none_match = request.getHeader(b"if-none-match")
        if_modified_since = request.getHeader(b"if-modified-since")
        if (if_none_match is not None and _matches(if_none_match.decode("latin-1"), etag)) or (
            if_none_match is None
            and if_modified_since is not None
            and _not_modified_since(if_modified_since.decode("latin-1"), stat.st_mtime)
        ):
            stream.close()
            request.setResponseCode(304)
            return b""
        kind, encoding = mimetypes.guess_type(path.name)
        if encoding is not None or kind is None:
            kind = "application/octet-stream"  # .tar.xz as bytes, never as Content-Encoding
        if kind.startswith("text/") or kind == "application/json":
            kind += "; charset=utf-8"
        request.setHeader(b"content-type", kind.encode())
        request.setHeader(b"content-length", str(stat.st_size).encode())
        if request.method == b"HEAD" or stat.st_size == 0:
            stream.close()
            return b""
        self._send(stream, request)
        return NOT_DONE_YET

    render_HEAD = render_GET

    @staticmethod
    def _send(stream: IO[bytes], request: Request) -> None:
        """Stream the file through a producer, so a big ImageBuilder never sits in memory."""
        done: Deferred[Any] = FileSender().beginFileTransfer(stream, request)

        def finished(result: object) -> None:
            stream.close()
            if isinstance(result, Failure):
                return  # the client went away: nothing left to finish
            request.finish()

        done.addBoth(finished)


def make_site(root: Path) -> Site:
    """A ``Site`` serving ``root`` (no access log: the tests and the demo would drown in it)."""
    site = Site(DemoTreeResource(root))
    site.displayTracebacks = False
    return site


def serve_tree(reactor: Any, root: Path, endpoint: str) -> Deferred[IListeningPort]:
    """Listen on ``endpoint`` (e.g. ``tcp:0:interface=127.0.0.1``) and serve ``root`` there."""
    return serverFromString(reactor, endpoint).listen(make_site(root))


def base_url(address: IAddress) -> str:
    """``http://host:port`` of a listening TCP port's ``getHost()``."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None or port is None:
        raise ValueError(f"{address} is not a TCP address: no URL for it")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"
