"""``//path``: GET/HEAD are redirected (301, query kept), other methods are served at the collapsed path."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_twisted

from asud.http.state import AsudApp
from tests.http.client import LiveServer, listening, raw_request
from tests.http.surfaces import hello_root


@pytest_twisted.async_yield_fixture
async def server(bare_app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(hello_root(bare_app)) as live:
        yield live


@pytest_twisted.ensureDeferred
async def test_get_is_redirected_with_its_query(server: LiveServer) -> None:
    status, _, head = await raw_request(server, "GET", "//api/v1/build?1700000000")
    assert status == 301
    assert "\r\nlocation: /api/v1/build?1700000000" in head
    assert "access-control-allow-origin: *" in head  # browsers follow a cross-origin redirect only so


@pytest_twisted.ensureDeferred
async def test_post_is_served_without_a_redirect(server: LiveServer) -> None:
    status, body, _ = await raw_request(server, "POST", "///api/v1/build", {"Content-Length": "0"})
    assert status == 200
    assert body == b"POST /api/v1/build"


@pytest_twisted.ensureDeferred
async def test_single_slash_untouched(server: LiveServer) -> None:
    assert (await server.client.get("/api/v1/build")).text == "GET /api/v1/build"
