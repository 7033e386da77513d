"""Overview/latest redirects, the revision check, the queue length."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_twisted

from tests.http.client import LiveServer, StubClient
from tests.http.helpers import assert_error
from tests.support.upstream import DemoTree


@pytest.mark.parametrize("path", ["/api/v1/overview", "/api/overview", "/overview"])
@pytest_twisted.ensureDeferred
async def test_overview_paths_redirect(server: LiveServer, path: str) -> None:
    response = await server.client.get(path + "?1700000000")
    assert response.status_code == 301
    assert response.headers["location"] == "/json/v1/overview.json"
    followed = await server.client.get(path, follow_redirects=True)
    assert followed.status_code == 200 and "branches" in followed.json()


@pytest.mark.parametrize("path", ["/api/v1/latest", "/api/latest"])
@pytest_twisted.ensureDeferred
async def test_latest_paths_redirect(server: LiveServer, path: str) -> None:
    response = await server.client.get(path)
    assert response.status_code == 301 and response.headers["location"] == "/json/v1/latest.json"
    assert (await server.client.get(path, follow_redirects=True)).json()["latest"]


@pytest.mark.parametrize(("version", "path"), [("24.10.4", "releases/24.10.4"), ("SNAPSHOT", "snapshots")])
@pytest_twisted.ensureDeferred
async def test_revision_is_the_version_code_of_the_target(
    client: StubClient, demo_tree: DemoTree, version: str, path: str
) -> None:
    info: Any = demo_tree[0]
    profiles = json.loads((info.root / path / "targets/ath79/generic/profiles.json").read_text())
    response = await client.get(f"/api/v1/revision/{version}/ath79/generic?1700000000")
    assert response.status_code == 200
    assert response.json() == {"revision": profiles["version_code"]}


@pytest_twisted.ensureDeferred
async def test_revision_of_unknown_version_or_target(client: StubClient) -> None:
    detail = assert_error(await client.get("/api/v1/revision/99.1.0/x86/64"), 400)
    assert detail == "Unsupported version: 99.1.0"
    detail = assert_error(await client.get("/api/v1/revision/24.10.4/nosuch/target"), 404)
    assert detail == "Failed to fetch revision for 24.10.4/nosuch/target"


@pytest_twisted.ensureDeferred
async def test_stats_reports_the_queue_length(client: StubClient) -> None:
    body = (await client.get("/api/v1/stats")).json()
    assert isinstance(body["queue_length"], int) and body["queue_length"] >= 0


@pytest_twisted.ensureDeferred
async def test_without_redis_or_catalog_the_answer_is_503(bare_client: StubClient) -> None:
    for path in ("/api/v1/stats", "/json/v1/overview.json", "/api/v1/revision/24.10.4/x86/64"):
        answer = await bare_client.get(path)
        assert_error(answer, 503)
        assert answer.headers["retry-after"] == "5"
