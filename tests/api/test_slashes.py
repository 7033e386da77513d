"""``//path``: GET/HEAD are redirected (301, query kept), other methods are served at the collapsed path."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sysup.api.slashes import DoubleSlashMiddleware
from tests.api.live_server import live_server


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"{request.method} {request.url.path}")


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/api/v1/build", _echo, methods=["GET", "POST"])])
    with live_server(DoubleSlashMiddleware(app), lifespan="off") as url:
        yield url


def test_get_is_redirected_with_its_query(base_url: str) -> None:
    response = httpx.get(httpx.URL(base_url + "//api/v1/build?1700000000"))
    assert response.status_code == 301
    assert response.headers["location"] == "/api/v1/build?1700000000"


def test_post_is_served_without_a_redirect(base_url: str) -> None:
    response = httpx.post(httpx.URL(base_url + "///api/v1/build"))
    assert response.status_code == 200
    assert response.text == "POST /api/v1/build"


def test_single_slash_untouched(base_url: str) -> None:
    assert httpx.get(base_url + "/api/v1/build").text == "GET /api/v1/build"
