"""``/docs`` with local assets only, and ``/openapi.json``."""

from __future__ import annotations

import re

import pytest_twisted

from tests.http.client import StubClient


@pytest_twisted.ensureDeferred
async def test_docs_page_loads_only_assets_served_here(bare_client: StubClient) -> None:
    """The API explorer must work offline: every script and stylesheet comes from this server."""
    page = await bare_client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (await bare_client.head("/docs")).status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/docs/assets/") for asset in assets)
    for asset in assets:
        answer = await bare_client.get(asset)
        assert answer.status_code == 200 and len(answer.content) > 100
    assert (await bare_client.get("/docs/assets/../../openapi.py")).status_code == 404
    assert (await bare_client.get("/docs/assets/nothing.js")).status_code == 404


@pytest_twisted.ensureDeferred
async def test_openapi_documents_the_routes(bare_client: StubClient) -> None:
    answer = await bare_client.get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    schema = answer.json()
    build = schema["paths"]["/api/v1/build"]["post"]
    assert {"200", "202", "400", "500", "529"} <= set(build["responses"])
    assert "/json/v1/overview.json" in schema["paths"]
    assert "BuildDone" in schema["components"]["schemas"]
    assert schema["info"]["title"] == "asud"
