"""``/api/v1/build`` without a build pool: validation answers, queue answers, status polling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.http.client import StubClient
from tests.http.conftest import close_app, demo_settings, open_app
from tests.http.helpers import assert_error, build_body
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree

QUEUED_KEYS = {"status", "detail", "queue_position", "request_hash", "enqueued_at"}


@pytest_twisted.ensureDeferred
async def test_post_queues_and_get_head_mirror_it(client: StubClient) -> None:
    posted = await client.post("/api/v1/build", json=build_body())
    assert posted.status_code == 202, posted.text
    body = posted.json()
    assert set(body) == QUEUED_KEYS
    assert body["status"] == 202 and body["detail"] == "queued"
    assert isinstance(body["queue_position"], int) and len(body["request_hash"]) == 64
    assert posted.headers["x-imagebuilder-status"] == "queued"
    assert posted.headers["x-queue-position"] == str(body["queue_position"])
    assert posted.headers["content-type"] == "application/json"

    url = f"/api/v1/build/{body['request_hash']}"
    polled = await client.get(url)
    assert polled.status_code == 202 and polled.json() == body
    head = await client.head(url)
    assert head.status_code == 202 and head.content == b""
    assert head.headers["x-imagebuilder-status"] == "queued"
    assert head.headers["x-queue-position"] == str(body["queue_position"])


@pytest_twisted.ensureDeferred
async def test_identical_requests_share_one_hash(client: StubClient) -> None:
    request = build_body()
    first = (await client.post("/api/v1/build", json=request)).json()
    second = (await client.post("/api/v1/build", json={**request, "client": "other/2"})).json()
    assert first["request_hash"] == second["request_hash"]


@pytest_twisted.ensureDeferred
async def test_unknown_hash_is_404_json(client: StubClient) -> None:
    response = await client.get(f"/api/v1/build/{'0' * 64}")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "title": "Not Found",
        "detail": "could not find provided request hash",
    }
    assert (await client.head(f"/api/v1/build/{'0' * 64}")).status_code == 404
    assert (await client.get("/api/v1/build/..%2F..%2Fetc")).status_code == 404


@pytest_twisted.ensureDeferred
async def test_post_on_a_hash_is_405_json(bare_client: StubClient) -> None:
    assert_error(await bare_client.post(f"/api/v1/build/{'0' * 64}", json=build_body()), 405)


@pytest.mark.parametrize(
    "body",
    [
        {"version": "24.10.4", "profile": "generic"},  # target missing
        build_body(profile="generic; rm -rf /"),
        build_body(packages=["--help"]),
        build_body(rootfs_size_mb="big"),
        build_body(filesystem="btrfs"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_schema_errors_are_400_with_a_string_detail(
    bare_client: StubClient, body: dict[str, Any]
) -> None:
    assert_error(await bare_client.post("/api/v1/build", json=body), 400)


@pytest_twisted.ensureDeferred
async def test_not_json_is_400(bare_client: StubClient) -> None:
    response = await bare_client.post(
        "/api/v1/build", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert assert_error(response, 400) == "Invalid request: the body is not valid JSON"


@pytest_twisted.ensureDeferred
async def test_catalog_errors_are_answered_at_once(client: StubClient) -> None:
    # x86/64 has only "generic", which accepts any profile name (reference rule); ath79 does not.
    unknown = build_body(target="ath79/generic", profile="foo")
    detail = assert_error(await client.post("/api/v1/build", json=unknown), 400)
    assert detail.startswith("Unsupported profile: foo.")
    detail = assert_error(await client.post("/api/v1/build", json=build_body(version="99.01.0")), 400)
    assert "99.01" in detail
    detail = assert_error(await client.post("/api/v1/build", json=build_body(packages=["no-such-pkg"])), 400)
    assert "no-such-pkg" in detail
    detail = assert_error(await client.post("/api/v1/build", json=build_body(defaults="echo hi")), 400)
    assert detail == "Handling `defaults` not enabled on server"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"packages": ["firewall", "firewall4"], "version": "23.05.5"}, "conflict"),
        ({"packages": ["luci-app-adblok"]}, "luci-app-adblock"),
        ({"repositories": {"evil\nsrc/gz x": "https://feeds.example.org/x"}}, "repositor"),
        ({"repositories": {"extra": "https://evil.example.org/feed"}}, "repositor"),
        ({"repository_keys": ["not a key"]}, "repositor"),
        ({"rootfs_size_mb": 100000}, "rootfs"),
        ({"profile": "--help"}, "profile"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_impossible_requests_are_refused_and_never_queued(
    client: StubClient, fields: dict[str, Any], expected: str
) -> None:
    before = (await client.get("/api/v1/stats")).json()["queue_length"]
    detail = assert_error(await client.post("/api/v1/build", json=build_body(**fields)), 400)
    assert expected in detail.lower()
    assert (await client.get("/api/v1/stats")).json()["queue_length"] == before


@pytest_twisted.ensureDeferred
async def test_overloaded_queue_is_529_with_retry_after(
    tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree
) -> None:
    config = demo_settings(tmp_path / "full", demo_tree, requests={"max_pending_jobs": 1})
    app = await open_app(config, redis_server.url, demo_tree)
    try:
        client = StubClient(make_resource(app))
        assert (await client.post("/api/v1/build", json=build_body())).status_code == 202
        response = await client.post("/api/v1/build", json=build_body())
    finally:
        await close_app(app)
    assert_error(response, 529)
    assert int(response.headers["retry-after"]) > 0


def test_state_is_typed(asud_app: AsudApp) -> None:
    import attrs

    assert attrs.has(type(asud_app))
    assert asud_app.config.default_distro == "openwrt"
