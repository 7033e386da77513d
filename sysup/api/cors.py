"""CORS for ``/api``, ``/json`` and ``/store``: any origin is allowed, and ``OPTIONS`` is answered here.

Browsers preflight the build POST and the polling GET (both send ``Content-Type: application/json``), and
LuCI downloads the image with XHR from the router's origin. Starlette's ``CORSMiddleware`` only answers an
``OPTIONS`` that carries ``Origin`` and ``Access-Control-Request-Method``; a bare ``OPTIONS`` would reach the
router and get 405, so this middleware answers every ``OPTIONS`` under the prefixes with 204 itself.
It also wraps redirects, which browsers only follow cross-origin when they carry the CORS headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Path prefixes whose answers carry CORS headers.
CORS_PREFIXES = ("/api/", "/json/", "/store/")

#: Headers sent on every answer under the prefixes.
ALLOW_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST, HEAD, OPTIONS",
    "access-control-allow-headers": "*",
    "access-control-expose-headers": "X-Imagebuilder-Status, X-Queue-Position, Retry-After, Content-Length",
}

#: How long browsers may cache a preflight answer, in seconds.
PREFLIGHT_MAX_AGE = "86400"

# Encoded once: they go on every hot answer (a finished build's GET), where MutableHeaders cost a tenth.
_RAW_ALLOW = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in ALLOW_HEADERS.items()]
_RAW_NAMES = frozenset(name for name, _ in _RAW_ALLOW)
#: :data:`ALLOW_HEADERS` as ASGI header pairs, for answers sent outside this middleware (``fast_path``).
CORS_RESPONSE_HEADERS = tuple(_RAW_ALLOW)
_PREFIX_ROOTS = frozenset(prefix.rstrip("/") for prefix in CORS_PREFIXES)


def wants_cors(path: str) -> bool:
    """Whether ``path`` (leading slashes collapsed) is under one of the CORS prefixes."""
    path = "/" + path.lstrip("/")
    return path.startswith(CORS_PREFIXES) or path in _PREFIX_ROOTS


class CorsMiddleware:
    """Adds :data:`ALLOW_HEADERS` under :data:`CORS_PREFIXES` and answers ``OPTIONS`` there with 204."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_cors(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            headers = [(name.encode(), value.encode()) for name, value in ALLOW_HEADERS.items()]
            headers.append((b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()))
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Replace any the route set (header names are lower-case bytes in ASGI).
                kept = [pair for pair in message.get("headers", ()) if pair[0].lower() not in _RAW_NAMES]
                message = {**message, "headers": kept + _RAW_ALLOW}
            await send(message)

        await self.app(scope, receive, send_with_cors)
