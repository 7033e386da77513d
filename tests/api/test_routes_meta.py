"""Overview/latest redirects, the revision check, stats."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error


@pytest.mark.parametrize("path", ["/api/v1/overview", "/api/overview", "/overview"])
def test_overview_paths_redirect(api_url: str, path: str) -> None:
    response = httpx.get(api_url + path + "?1700000000")
    assert response.status_code == 301
    assert response.headers["location"] == "/json/v1/overview.json"
    followed = httpx.get(api_url + path, follow_redirects=True)
    assert followed.status_code == 200 and "branches" in followed.json()


@pytest.mark.parametrize("path", ["/api/v1/latest", "/api/latest"])
def test_latest_paths_redirect(api_url: str, path: str) -> None:
    response = httpx.get(api_url + path)
    assert response.status_code == 301 and response.headers["location"] == "/json/v1/latest.json"
    assert httpx.get(api_url + path, follow_redirects=True).json()["latest"]


@pytest.mark.parametrize(("version", "path"), [("24.10.4", "releases/24.10.4"), ("SNAPSHOT", "snapshots")])
def test_revision_is_the_version_code_of_the_target(
    api_url: str, demo_info: Any, version: str, path: str
) -> None:
    profiles = json.loads((demo_info.root / path / "targets/ath79/generic/profiles.json").read_text())
    response = httpx.get(f"{api_url}/api/v1/revision/{version}/ath79/generic?1700000000")
    assert response.status_code == 200
    assert response.json() == {"revision": profiles["version_code"]}


def test_revision_of_unknown_version_or_target(api_url: str) -> None:
    assert (
        assert_error(httpx.get(f"{api_url}/api/v1/revision/99.1.0/x86/64"), 400)
        == "Unsupported version: 99.1.0"
    )
    detail = assert_error(httpx.get(f"{api_url}/api/v1/revision/24.10.4/nosuch/target"), 404)
    assert detail == "Failed to fetch revision for 24.10.4/nosuch/target"


def test_stats_reports_the_queue_length(bare_url: str) -> None:
    body = httpx.get(f"{bare_url}/api/v1/stats").json()
    assert isinstance(body["queue_length"], int) and body["queue_length"] >= 0


def test_openapi_documents_the_routes(bare_url: str) -> None:
    assert httpx.get(f"{bare_url}/docs").status_code == 200
    schema = httpx.get(f"{bare_url}/openapi.json").json()
    build = schema["paths"]["/api/v1/build"]["post"]
    assert {"200", "202", "400", "500", "529"} <= set(build["responses"])
    assert "/json/v1/overview.json" in schema["paths"]
    assert "BuildDone" in schema["components"]["schemas"]


def test_docs_page_loads_only_assets_served_here(bare_url: str) -> None:
    """The API explorer must work offline: every script and stylesheet comes from this server."""
    page = httpx.get(f"{bare_url}/docs")
    assert page.status_code == 200 and httpx.head(f"{bare_url}/docs").status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/docs/assets/") for asset in assets)
    for asset in assets:
        answer = httpx.get(f"{bare_url}{asset}")
        assert answer.status_code == 200 and len(answer.content) > 100
