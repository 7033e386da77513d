"""``/api/upgrade-check`` (2017 API) and ``/api/v1/upgrade-check`` through the daemon's resource.

The app is the daemon's root over the demo catalog and a private ``redis-server``; its policy moves one
branch at a time (``[upgrade_policy] next_branch_only``), so 23.05.5 is offered 24.10.5.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.http.client import Answer, StubClient
from tests.http.conftest import close_app, demo_settings, open_app
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree

LEGACY = "/api/upgrade-check"
V1 = "/api/v1/upgrade-check"


@pytest_twisted.async_yield_fixture
async def next_branch_app(tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree
                          ) -> AsyncIterator[AsudApp]:
    config = demo_settings(tmp_path / "data", demo_tree, upgrade_policy={"next_branch_only": True})
    app = await open_app(config, redis_server.url, demo_tree)
    try:
        yield app
    finally:
        await close_app(app)


@pytest.fixture
def client(next_branch_app: AsudApp) -> StubClient:
    return StubClient(make_resource(next_branch_app))


async def installed(client: StubClient, version: str, names: list[str], target: str = "x86/64"
                    ) -> dict[str, str]:
    """Versions as a device running ``version`` reports them, read from this server's ``/json/v1`` index."""
    path = "snapshots" if version == "SNAPSHOT" else f"releases/{version}"
    index: dict[str, str] = {}
    targets = await client.get(f"/json/v1/{path}/targets/{target}/index.json")
    assert targets.status_code == 200, targets.text
    index.update(targets.json()["packages"])
    arch = targets.json()["architecture"]
    feeds = await client.get(f"/json/v1/{path}/packages/{arch}-index.json")
    assert feeds.status_code == 200, feeds.text
    index.update(feeds.json())
    return {name: index[name] for name in names}


def legacy_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"distro": "openwrt", "target": "x86", "subtarget": "64"}
    body.update(fields)
    return body


@pytest_twisted.ensureDeferred
async def test_point_release(client: StubClient) -> None:
    packages = await installed(client, "24.10.4", ["curl", "dnsmasq", "owut"])
    packages["vim"] = "99.0-r1"  # newer than the release has: must not be listed as an upgrade
    response = await client.post(LEGACY, json=legacy_body(version="24.10.4", packages=packages))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["version"] == "24.10.5"
    assert body["upgrades"] == {"curl": ["8.14.1-r1", "8.12.1-r2"], "dnsmasq": ["2.91-r1", "2.90-r4"]}
    assert body["packages"] == ["curl", "dnsmasq", "owut", "vim"]
    assert len(body["request_hash"]) == 64
    assert set(body) == {"version", "upgrades", "packages", "request_hash"}


@pytest_twisted.ensureDeferred
async def test_next_branch_renames_auc_to_owut(client: StubClient) -> None:
    packages = await installed(client, "23.05.5", ["auc", "curl", "luci-app-opkg"])
    # 2019 clients: ``installed``, ``revision``, ``LEDE``, and the target in one field
    body = {
        "distro": "LEDE",
        "version": "23.05.5",
        "target": "x86/64",
        "installed": packages,
        "revision": "r24106-10cc5fcd00",
    }
    response = await client.post(LEGACY, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["version"] == "24.10.5"
    assert "owut" in answer["packages"] and "auc" not in answer["packages"]
    assert "luci-app-package-manager" in answer["packages"]
    assert answer["upgrades"]["curl"] == ["8.14.1-r1", "8.7.1-1"]


@pytest_twisted.ensureDeferred
async def test_latest_release_answers_204_with_the_hash(client: StubClient) -> None:
    packages = await installed(client, "25.12.1", ["curl", "owut"])
    response = await client.post(LEGACY, json=legacy_body(version="25.12.1", packages=packages))
    assert response.status_code == 204
    assert response.content == b""
    request_hash = response.headers["x-request-hash"]
    assert len(request_hash) == 64
    again = await client.get(f"{LEGACY}/{request_hash}")
    assert again.status_code == 204
    assert again.headers["x-request-hash"] == request_hash


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"distro": "openwrt", "target": "x86", "subtarget": "64"}, "version"),
        ({"version": "24.10.4"}, "target"),
        ({"version": "24.10.4", "target": "x86"}, "subtarget"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_missing_field(client: StubClient, body: dict[str, str], missing: str) -> None:
    response = await client.post(LEGACY, json=body)
    assert response.status_code == 400
    assert response.headers["x-missing-param"] == missing
    answer = response.json()
    assert missing in answer["error"] and answer["detail"] == answer["error"]


@pytest_twisted.ensureDeferred
async def test_unknown_things_are_400(client: StubClient) -> None:
    for body in (legacy_body(version="19.07.10"), legacy_body(distro="debian", version="24.10.4")):
        response = await client.post(LEGACY, json=body)
        assert response.status_code == 400
        assert set(response.json()) == {"error", "detail"}
    broken = await client.post(LEGACY, content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400


@pytest_twisted.ensureDeferred
async def test_unknown_package_is_422(client: StubClient) -> None:
    packages = {"curl": "8.12.1-r2", "no-such-package": "1.0", "also-missing": "2", "kernel": "6.6"}
    response = await client.post(LEGACY, json=legacy_body(version="24.10.4", packages=packages))
    assert response.status_code == 422
    assert response.headers["x-unknown-package"] == "no-such-package"
    body = response.json()
    assert body["unknown_packages"] == ["no-such-package", "also-missing"]
    assert "no-such-package" in body["error"] and "also-missing" in body["detail"]


@pytest_twisted.ensureDeferred
async def test_get_by_hash_and_prefix(client: StubClient) -> None:
    posted = await client.post(LEGACY, json=legacy_body(version="24.10.4", packages={"curl": "8.12.1-r2"}))
    assert posted.status_code == 200
    request_hash = posted.json()["request_hash"]
    for key in (request_hash, request_hash[:12], request_hash[:15]):
        response = await client.get(f"{LEGACY}/{key}")
        assert response.status_code == 200, key
        assert response.json() == posted.json()
    unknown = await client.get(f"{LEGACY}/{'f' * 64}")
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"error", "detail"}
    assert (await client.get(f"{LEGACY}/xyz")).status_code == 404


@pytest_twisted.ensureDeferred
async def test_v1_upgrade(client: StubClient) -> None:
    packages = await installed(client, "23.05.5", ["auc", "curl"])
    response = await client.post(V1, json={"version": "23.05.5", "target": "x86/64", "packages": packages})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == 200 and body["upgrade"] is True
    assert body["version"] == "24.10.5"
    assert body["version_code"].startswith("r29087-")
    assert body["upgrades"]["curl"] == {"from": "8.7.1-1", "to": "8.14.1-r1"}
    assert body["packages"] == ["curl", "owut"]
    renames = {(c["source"], c.get("target"), c["revision"]) for c in body["package_changes"]}
    assert ("auc", "owut", 26792) in renames
    # the same request through the 2017 API has the same hash, and either GET reads it
    legacy = await client.post(LEGACY, json={"version": "23.05.5", "target": "x86/64", "packages": packages})
    assert legacy.json()["request_hash"] == body["request_hash"]
    stored = await client.get(f"{V1}/{body['request_hash'][:12]}")
    assert stored.status_code == 200 and stored.json() == body


@pytest_twisted.ensureDeferred
async def test_v1_up_to_date_and_errors(client: StubClient) -> None:
    response = await client.post(V1, json={"version": "25.12.1", "target": "x86/64"})
    assert response.status_code == 200
    body = response.json()
    assert body["upgrade"] is False and len(body["request_hash"]) == 64
    nope = {"version": "24.10.4", "target": "x86/64", "packages": {"nope": "1"}}
    unknown = await client.post(V1, json=nope)
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["detail"]
    no_subtarget = await client.post(V1, json={"version": "24.10.4", "target": "x86"})
    assert no_subtarget.status_code == 400
    assert (await client.get(f"{V1}/{'e' * 64}")).status_code == 404


@pytest_twisted.ensureDeferred
async def test_openapi_documents_both_routes(client: StubClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"204", "400", "422"} <= set(paths[LEGACY]["post"]["responses"])
    assert paths[V1]["post"]["summary"]
    assert "UpgradeCheckAnswer" in str(paths[V1]["post"]["responses"]["200"])


# -- new with the daemon: Redis down, and the shapes of the errors on either side --------------------------


@pytest_twisted.ensureDeferred
async def test_redis_down_is_503_with_retry_after_in_each_shape(client: StubClient,
                                                                redis_server: RedisProcess) -> None:
    redis_server.stop()
    legacy = await client.post(LEGACY, json=legacy_body(version="24.10.4", packages={"curl": "8.12.1-r2"}))
    assert_shape(legacy, 503, legacy_shape=True)
    assert int(legacy.headers["retry-after"]) > 0
    v1 = await client.get(f"{V1}/{'e' * 64}")
    assert_shape(v1, 503, legacy_shape=False)
    assert int(v1.headers["retry-after"]) > 0


def assert_shape(response: Answer, status: int, *, legacy_shape: bool) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    if legacy_shape:
        assert set(body) == {"error", "detail"} and body["error"] == body["detail"]
    else:
        assert body["status"] == status and isinstance(body["detail"], str)
