"""CORS headers and the bare ``OPTIONS`` preflight, over real HTTP, on a minimal surface behind the root."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_twisted

from asud.http.responses import wants_cors
from asud.http.state import AsudApp
from tests.http.client import LiveServer, listening
from tests.http.surfaces import hello_root


@pytest_twisted.async_yield_fixture
async def server(bare_app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(hello_root(bare_app)) as live:
        yield live


@pytest.mark.parametrize("path", ["/api/x", "/json/x", "/store/x"])
@pytest_twisted.ensureDeferred
async def test_preflight_is_answered_without_reaching_the_routes(server: LiveServer, path: str) -> None:
    for headers in ({}, {"Origin": "http://192.168.1.1", "Access-Control-Request-Method": "POST"}):
        response = await server.client.options(path, headers=headers)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-allow-methods"] == "GET, POST, HEAD, OPTIONS"
        assert response.headers["access-control-allow-headers"] == "*"
        assert response.headers["access-control-max-age"] == "86400"


@pytest.mark.parametrize("path", ["/api/x", "/json/x", "/store/x"])
@pytest_twisted.ensureDeferred
async def test_answers_under_the_prefixes_allow_any_origin(server: LiveServer, path: str) -> None:
    response = await server.client.post(path, headers={"Origin": "http://192.168.1.1"})
    assert response.text == "hello"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "X-Imagebuilder-Status" in response.headers["access-control-expose-headers"]
    assert "X-Request-Hash" in response.headers["access-control-expose-headers"]


@pytest_twisted.ensureDeferred
async def test_other_paths_are_left_alone(server: LiveServer) -> None:
    assert "access-control-allow-origin" not in (await server.client.get("/other")).headers
    refused = await server.client.options("/other")
    assert refused.status_code == 405
    assert refused.json() == {"status": 405, "title": "Method Not Allowed", "detail": "Method Not Allowed"}


def test_prefix_matching() -> None:
    assert wants_cors("/api/v1/build") and wants_cors("//api/v1/build") and wants_cors("/store")
    assert not wants_cors("/apiary") and not wants_cors("/docs")
