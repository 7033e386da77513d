"""Tiny Klein surfaces for testing the root's cross-route rules on their own."""

from __future__ import annotations

from twisted.web.iweb import IRequest

from asud.http.errors import json_app
from asud.http.rate_limit import client_identity
from asud.http.root import Mount, Root
from asud.http.state import AsudApp


class Hello:
    """``hello`` on a few paths (GET and POST); echoes method and path on ``/api/v1/build``."""

    app = json_app()

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/api/x", methods=["GET", "POST"])
    @app.route("/json/x", methods=["GET", "POST"])
    @app.route("/store/x", methods=["GET", "POST"])
    @app.route("/other", methods=["GET", "POST"])
    def hello(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain")
        return b"hello"

    @app.route("/api/v1/build", methods=["GET", "POST"])
    def echo(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain")
        return b"%s %s" % (request.method, request.path)

    @app.route("/api/status/<int:code>", methods=["GET", "POST"])
    def status(self, request: IRequest, code: int) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"status":%d,"seen":"%s"}' % (code, request.getHeader(b"content-type") or b"")


    @app.route("/api/whoami", methods=["GET"])
    def whoami(self, request: IRequest) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain")
        return client_identity(request).encode()


def hello_root(app: AsudApp) -> Root:
    """A root whose only surface is :class:`Hello` (under ``/api``, ``/json``, ``/store``, ``/other``)."""
    resource = Hello().resource()
    mounts = [Mount(prefix, "tests", "Hello") for prefix in ("/api", "/json", "/store", "/other")]
    return Root(app, [(mount, resource) for mount in mounts])
