"""``//api/v1/...`` → ``/api/v1/...``: LuCI and auc join a server URL that ends in ``/`` with ``/api/...``.

GET and HEAD get a 301 to the collapsed path (as the reference server answers). Other methods are served
at the collapsed path directly: a redirected POST turns into a GET in browsers and some HTTP clients, and a
preflight ``OPTIONS`` must not be redirected at all.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class DoubleSlashMiddleware:
    """Collapses repeated leading slashes in the request path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("//"):
            await self.app(scope, receive, send)
            return
        collapsed = "/" + path.lstrip("/")
        if scope["method"] in ("GET", "HEAD"):
            query = scope.get("query_string", b"").decode("latin-1")
            location = collapsed + (f"?{query}" if query else "")
            await RedirectResponse(location, status_code=301)(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or path.encode()
        scope = dict(scope, path=collapsed, raw_path=b"/" + raw_path.lstrip(b"/"))
        await self.app(scope, receive, send)
