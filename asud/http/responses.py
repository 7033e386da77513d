"""What every surface answers with: JSON bytes with their content type, the error body, CORS headers.

Klein sends a returned ``dict`` as an empty 200 and a returned ``str`` as ``text/html``, so every JSON answer
goes through :func:`json_answer`, which sets the status, ``Content-Type: application/json`` and
``Content-Length`` (without it Twisted sends the answer chunked) and returns the bytes for Klein to write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from klein.interfaces import IKleinRequest
from twisted.web.iweb import IRequest

__all__ = [
    "CORS_HEADERS",
    "CORS_PREFIXES",
    "JSON_TYPE",
    "PREFLIGHT_MAX_AGE",
    "add_cors_headers",
    "error_answer",
    "error_body",
    "json_answer",
    "json_bytes",
    "mount_path",
    "redirect",
    "wants_cors",
]

JSON_TYPE = b"application/json"

#: Path prefixes whose answers carry CORS headers (browsers preflight the build POST and polling GET, and
#: LuCI downloads the image with XHR from the router's origin).
CORS_PREFIXES = ("/api/", "/json/", "/store/")
_CORS_ROOTS = frozenset(prefix.rstrip("/") for prefix in CORS_PREFIXES)

#: Headers sent on every answer under :data:`CORS_PREFIXES`.
CORS_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"Access-Control-Allow-Origin", b"*"),
    (b"Access-Control-Allow-Methods", b"GET, POST, HEAD, OPTIONS"),
    (b"Access-Control-Allow-Headers", b"*"),
    (
        b"Access-Control-Expose-Headers",
        # The 2017 API's headers too: a browser on another origin reads a 204's request hash from them.
        b"X-Imagebuilder-Status, X-Queue-Position, Retry-After, Content-Length, X-Request-Hash, "
        b"X-Build-Queue-Position, X-Unknown-Package, X-Missing-Param",
    ),
)
#: How long browsers may cache a preflight answer, in seconds.
PREFLIGHT_MAX_AGE = b"86400"

#: ``title`` added to error bodies of these statuses, as the reference server does.
TITLES = {
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    503: "Service Unavailable",
    529: "Server overloaded",
}


def json_bytes(content: Any) -> bytes:
    """Compact UTF-8 JSON of ``content`` (non-string keys such as ints are written as strings)."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _header(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def json_answer(
    request: IRequest,
    body: bytes | Any,
    status: int = 200,
    headers: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
) -> bytes:
    """Set ``status``, the JSON content type, ``Content-Length`` and ``headers``; return the body bytes.

    ``body`` may be pre-rendered bytes (hot answers) or anything :func:`json_bytes` takes. A ``HEAD``
    answer gets the same headers and Twisted leaves the body out.
    """
    data = body if isinstance(body, bytes) else json_bytes(body)
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", JSON_TYPE)
    request.setHeader(b"Content-Length", b"%d" % len(data))
    for name, value in (headers or {}).items():
        request.setHeader(_header(name), _header(value))
    return data


def error_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """``{"status": …, "detail": …}`` (+ ``title`` for some statuses, + ``extra``): every v1 error."""
    body: dict[str, Any] = {"status": status, "detail": detail}
    if status in TITLES:
        body["title"] = TITLES[status]
    body.update(extra)
    return body


def error_answer(
    request: IRequest, status: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> bytes:
    """An error answer in the v1 shape (see :func:`error_body`)."""
    return json_answer(request, error_body(status, detail, **extra), status, headers)


def mount_path(request: IRequest) -> str:
    """The path asud's resource is mounted at in the ``Site`` (``""`` at the top, ``"/asud"`` when a host
    program put it there): links and redirects asud writes start with it."""
    # Inside a Klein route the request's prepath has taken the route's own segments too; Klein's
    # ``script_name`` is the part before asud's root. Outside a route (the root resource) it is the prepath.
    mapper = getattr(IKleinRequest(request), "mapper", None)
    if mapper is not None:
        return str(getattr(mapper, "script_name", "") or "").rstrip("/")
    prepath = getattr(request, "prepath", None) or []
    return "".join("/" + segment.decode("utf-8", "replace") for segment in prepath)


def redirect(request: IRequest, location: str | bytes, status: int = 301) -> bytes:
    """A redirect with an empty body (and so no content type)."""
    request.setResponseCode(status)
    request.setHeader(b"Location", _header(location))
    request.setHeader(b"Content-Length", b"0")
    return b""


def wants_cors(path: str) -> bool:
    """Whether ``path`` (leading slashes collapsed) is under one of :data:`CORS_PREFIXES`."""
    path = "/" + path.lstrip("/")
    return path.startswith(CORS_PREFIXES) or path in _CORS_ROOTS


def add_cors_headers(request: IRequest) -> None:
    for name, value in CORS_HEADERS:
        request.setHeader(name, value)
