"""``/docs`` (the API explorer), its assets, and ``/openapi.json``.

Swagger UI's files come from the ``swagger-ui-bundle`` package and are served by asud itself: the daemon
must work offline, and a page of ours never makes the browser fetch from elsewhere. Only the files the
bundle ships at start are served (a fixed set of names), so no path reaches outside it.
"""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path

import swagger_ui_bundle
from twisted.internet.defer import Deferred
from twisted.web.iweb import IRequest

from asud.errors import NotFound
from asud.http.errors import json_app
from asud.http.files import send_file
from asud.http.openapi import document_bytes
from asud.http.responses import json_answer
from asud.http.state import AsudApp

__all__ = ["ASSETS_PATH", "Docs", "swagger_page"]

#: Where the Swagger UI assets are served.
ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(swagger_ui_bundle.swagger_ui_path)
_ASSETS = frozenset(entry.name for entry in ASSETS_DIR.iterdir() if entry.is_file())


def swagger_page(title: str, openapi_url: str = "/openapi.json") -> bytes:
    """The explorer page: Swagger UI's script and stylesheet from :data:`ASSETS_PATH`, nothing else."""
    return f"""<!DOCTYPE html>
<html>
<head>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="shortcut icon" href="{ASSETS_PATH}/favicon-32x32.png">
<title>{html.escape(title)}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle({{
  url: {openapi_url!r},
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}})
</script>
</body>
</html>
""".encode()


class Docs:
    """The ``/docs`` and ``/openapi.json`` surface."""

    app = json_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state
        self._page = swagger_page("asud — API documentation")

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/docs", methods=["GET", "HEAD"])
    def page(self, request: IRequest) -> bytes:
        """The interactive API documentation."""
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Content-Length", b"%d" % len(self._page))
        return self._page

    @app.route("/docs/assets/<string:name>", methods=["GET", "HEAD"])
    def asset(self, request: IRequest, name: str) -> bytes | Deferred[bytes]:
        if name not in _ASSETS:
            raise NotFound("Not Found")
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        return send_file(request, ASSETS_DIR / name, content_type.encode("ascii"))

    @app.route("/openapi.json", methods=["GET", "HEAD"])
    def openapi(self, request: IRequest) -> bytes:
        """The OpenAPI document of every API route."""
        return json_answer(request, document_bytes())
