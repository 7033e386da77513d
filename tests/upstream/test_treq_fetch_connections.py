"""A catalog load's many small requests share one keep-alive connection, 304s and 404s included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.interfaces import IAddress
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from asud.upstream.fetch import Fetcher, UpstreamNotFound

ETAG = '"v1"'


class _KeepAlive(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        if request.path != b"/sha256sums":
            request.setResponseCode(404)
            return b"not here"
        if request.getHeader("If-None-Match") == ETAG:
            request.setResponseCode(304)  # twisted.web sends no Content-Length with a 304
            request.setHeader("ETag", ETAG)
            return b""
        request.setHeader("ETag", ETAG)
        return b"0" * 64 + b" *profiles.json\n"


class _CountingSite(Site):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = 0

    def buildProtocol(self, addr: IAddress) -> Any:
        self.connections += 1
        return super().buildProtocol(addr)


@pytest_twisted.async_yield_fixture()
async def server() -> AsyncIterator[tuple[str, _CountingSite]]:
    site = _CountingSite(_KeepAlive(), timeout=None)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    yield f"http://127.0.0.1:{port.getHost().port}", site
    await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_conditional_requests_and_404s_reuse_one_connection(server: tuple[str, _CountingSite]) -> None:
    url, site = server
    fetcher = Fetcher(timeout=5, retries=0)
    try:
        first = await fetcher.fetch(f"{url}/sha256sums")
        assert first.etag == ETAG and first.body
        for _ in range(20):
            assert (await fetcher.fetch(f"{url}/sha256sums", etag=ETAG)).not_modified
        for _ in range(5):
            try:
                await fetcher.fetch(f"{url}/missing")
            except UpstreamNotFound:
                pass
            else:
                raise AssertionError("expected UpstreamNotFound")
    finally:
        await fetcher.close()
    assert site.connections == 1
