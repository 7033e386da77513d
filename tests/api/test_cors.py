"""CORS headers and the bare ``OPTIONS`` preflight, over real HTTP, on a minimal app behind the middleware."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sysup.api.cors import CorsMiddleware, wants_cors
from tests.api.live_server import live_server


async def _hello(_request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    routes = [
        Route(path, _hello, methods=["GET", "POST"]) for path in ("/api/x", "/json/x", "/store/x", "/other")
    ]
    with live_server(CorsMiddleware(Starlette(routes=routes)), lifespan="off") as url:
        yield url


@pytest.mark.parametrize("path", ["/api/x", "/json/x", "/store/x"])
def test_preflight_is_answered_without_reaching_the_routes(base_url: str, path: str) -> None:
    for headers in ({}, {"Origin": "http://192.168.1.1", "Access-Control-Request-Method": "POST"}):
        response = httpx.options(base_url + path, headers=headers)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-allow-methods"] == "GET, POST, HEAD, OPTIONS"
        assert response.headers["access-control-allow-headers"] == "*"


@pytest.mark.parametrize("path", ["/api/x", "/json/x", "/store/x"])
def test_answers_under_the_prefixes_allow_any_origin(base_url: str, path: str) -> None:
    response = httpx.post(base_url + path, headers={"Origin": "http://192.168.1.1"})
    assert response.text == "hello"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "X-Imagebuilder-Status" in response.headers["access-control-expose-headers"]


def test_other_paths_are_left_alone(base_url: str) -> None:
    assert "access-control-allow-origin" not in httpx.get(base_url + "/other").headers
    assert httpx.options(base_url + "/other").status_code == 405


def test_prefix_matching() -> None:
    assert wants_cors("/api/v1/build") and wants_cors("//api/v1/build") and wants_cors("/store")
    assert not wants_cors("/apiary") and not wants_cors("/docs")
