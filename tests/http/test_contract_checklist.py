"""clients-contract §6.7, one test per item, against a live server (items 2, 8 and 15 need a finished build
and live in ``test_end_to_end.py``, which also re-checks 1, 3 and 4 on real started/done/failed answers)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_twisted

from tests.http.client import Answer, LiveServer
from tests.http.helpers import assert_error, build_body

KNOWN_STARTED = {"init", "calculate_packages_hash", "building_image"}


async def _post(server: LiveServer, body: dict[str, Any]) -> Answer:
    return await server.client.post("/api/v1/build", json=body)


@pytest_twisted.ensureDeferred
async def test_item_01_status_int_in_every_build_body(server: LiveServer) -> None:
    queued = await _post(server, build_body())
    answers = [
        queued,
        await server.client.get(f"/api/v1/build/{queued.json()['request_hash']}"),
        await _post(server, build_body(target="ath79/generic", profile="nosuch")),
        await _post(server, {"profile": "generic"}),
        await server.client.get(f"/api/v1/build/{'f' * 64}"),
    ]
    for response in answers:
        assert response.json()["status"] == response.status_code


@pytest_twisted.ensureDeferred
async def test_item_03_queue_position_only_while_queued(server: LiveServer) -> None:
    body = (await _post(server, build_body())).json()
    assert body["detail"] == "queued" and isinstance(body["queue_position"], int)
    assert "imagebuilder_status" not in body


def test_item_04_started_status_is_from_the_known_set() -> None:
    from asud.build.stages import BuildStage

    assert {stage.client_status for stage in BuildStage} - {"done", "failed"} <= KNOWN_STARTED


@pytest_twisted.ensureDeferred
async def test_item_05_head_on_build_status(server: LiveServer) -> None:
    request_hash = (await _post(server, build_body())).json()["request_hash"]
    response = await server.client.head(f"/api/v1/build/{request_hash}")
    assert response.status_code == 202 and response.content == b""
    assert response.headers["x-imagebuilder-status"] == "queued"
    assert response.headers["x-queue-position"].isdigit()


@pytest.mark.parametrize("path", ["/api/overview", "/api/v1/overview"])
@pytest_twisted.ensureDeferred
async def test_item_06_overview_redirects(server: LiveServer, path: str) -> None:
    response = await server.client.get(path, headers={"Origin": "http://192.168.1.1"})
    assert response.status_code == 301 and response.headers["location"] == "/json/v1/overview.json"
    assert response.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_item_07_revision_for_release_versions(server: LiveServer) -> None:
    for version in ("23.05.5", "24.10.4", "24.10.5", "25.12.1", "SNAPSHOT"):
        response = await server.client.get(f"/api/v1/revision/{version}/x86/64")
        assert response.status_code == 200, (version, response.text)
        assert response.json()["revision"].startswith("r")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/build", f"/api/v1/build/{'a' * 64}", "/json/v1/overview.json", f"/store/{'a' * 64}/x.bin"],
)
@pytest_twisted.ensureDeferred
async def test_item_09_cors_and_preflight(bare_server: LiveServer, path: str) -> None:
    preflight = await bare_server.client.options(
        path,
        headers={
            "Origin": "http://192.168.1.1",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert set(preflight.headers["access-control-allow-methods"].split(", ")) >= {
        "GET",
        "POST",
        "HEAD",
        "OPTIONS",
    }
    assert preflight.headers["access-control-allow-headers"] in ("*", "content-type")
    answer = await bare_server.client.get(path, headers={"Origin": "http://192.168.1.1"})
    assert answer.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_item_10_timestamp_query_is_tolerated(server: LiveServer) -> None:
    posted = await server.client.post("/api/v1/build?1700000000", json=build_body())
    assert posted.status_code == 202
    for path in (
        f"/api/v1/build/{posted.json()['request_hash']}",
        "/json/v1/overview.json",
        "/json/v1/branches.json",
        "/api/v1/revision/24.10.4/x86/64",
        "/json/v1/releases/24.10.4/targets/x86/64/index.json",
    ):
        assert (await server.client.get(f"{path}?1700000000")).status_code in (200, 202), path
    assert (await server.client.get("/api/v1/overview?1700000000")).status_code == 301


@pytest_twisted.ensureDeferred
async def test_item_11_comma_profile_and_null_rootfs_size(server: LiveServer) -> None:
    body = build_body(target="ath79/generic", profile="tplink,archer-c7-v5", rootfs_size_mb=None)
    response = await _post(server, body)
    assert response.status_code in (200, 202), response.text


@pytest_twisted.ensureDeferred
async def test_item_12_empty_defaults_repositories_and_keys(server: LiveServer) -> None:
    body = build_body(defaults="", repositories={}, repository_keys=[])
    response = await _post(server, body)
    assert response.status_code in (200, 202), response.text


@pytest_twisted.ensureDeferred
async def test_item_13_packages_versions_without_packages(server: LiveServer) -> None:
    index = (await server.client.get("/json/v1/releases/24.10.4/packages/x86_64-index.json")).json()
    name = sorted(index)[0]
    body = build_body(packages_versions={name: index[name]})
    del body["packages"]
    response = await _post(server, body)
    assert response.status_code in (200, 202), response.text


@pytest_twisted.ensureDeferred
async def test_item_14_enqueue_quickly(server: LiveServer) -> None:
    started = time.monotonic()
    response = await _post(server, build_body(target="ath79/generic", profile="tplink_archer-c7-v2"))
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert elapsed < 2.0, f"POST took {elapsed:.2f} s"


@pytest_twisted.ensureDeferred
async def test_item_14_unknown_profile_is_answered_before_queueing(server: LiveServer) -> None:
    assert_error(await _post(server, build_body(target="mediatek/filogic", profile="nosuch-device")), 400)
