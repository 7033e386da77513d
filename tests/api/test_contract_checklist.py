"""clients-contract §6.7, one test per item, against a live server (items 2, 8 and 15 need a finished build
and live in ``test_end_to_end.py``, which also re-checks 1, 3 and 4 on real started/done/failed answers)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, build_body

KNOWN_STARTED = {"init", "calculate_packages_hash", "building_image"}


def _post(api_url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{api_url}/api/v1/build", json=body, timeout=15)


def test_item_01_status_int_in_every_build_body(api_url: str) -> None:
    queued = _post(api_url, build_body())
    answers = [
        queued,
        httpx.get(f"{api_url}/api/v1/build/{queued.json()['request_hash']}"),
        _post(api_url, build_body(target="ath79/generic", profile="nosuch")),
        _post(api_url, {"profile": "generic"}),
        httpx.get(f"{api_url}/api/v1/build/{'f' * 64}"),
    ]
    for response in answers:
        assert response.json()["status"] == response.status_code


def test_item_03_queue_position_only_while_queued(api_url: str) -> None:
    body = _post(api_url, build_body()).json()
    assert body["detail"] == "queued" and isinstance(body["queue_position"], int)
    assert "imagebuilder_status" not in body


def test_item_04_started_status_is_from_the_known_set() -> None:
    from asud.build.stages import BuildStage

    assert {stage.client_status for stage in BuildStage} - {"done", "failed"} <= KNOWN_STARTED


def test_item_05_head_on_build_status(api_url: str) -> None:
    request_hash = _post(api_url, build_body()).json()["request_hash"]
    response = httpx.head(f"{api_url}/api/v1/build/{request_hash}")
    assert response.status_code == 202 and response.content == b""
    assert response.headers["x-imagebuilder-status"] == "queued"
    assert response.headers["x-queue-position"].isdigit()


@pytest.mark.parametrize("path", ["/api/overview", "/api/v1/overview"])
def test_item_06_overview_redirects(api_url: str, path: str) -> None:
    response = httpx.get(api_url + path, headers={"Origin": "http://192.168.1.1"})
    assert response.status_code == 301 and response.headers["location"] == "/json/v1/overview.json"
    assert response.headers["access-control-allow-origin"] == "*"


def test_item_07_revision_for_release_versions(api_url: str) -> None:
    for version in ("23.05.5", "24.10.4", "24.10.5", "25.12.1", "SNAPSHOT"):
        response = httpx.get(f"{api_url}/api/v1/revision/{version}/x86/64")
        assert response.status_code == 200, (version, response.text)
        assert response.json()["revision"].startswith("r")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/build", f"/api/v1/build/{'a' * 64}", "/json/v1/overview.json", f"/store/{'a' * 64}/x.bin"],
)
def test_item_09_cors_and_preflight(bare_url: str, path: str) -> None:
    preflight = httpx.options(
        bare_url + path,
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
    answer = httpx.get(bare_url + path, headers={"Origin": "http://192.168.1.1"})
    assert answer.headers["access-control-allow-origin"] == "*"


def test_item_10_timestamp_query_is_tolerated(api_url: str) -> None:
    posted = httpx.post(f"{api_url}/api/v1/build?1700000000", json=build_body())
    assert posted.status_code == 202
    for path in (
        f"/api/v1/build/{posted.json()['request_hash']}",
        "/json/v1/overview.json",
        "/json/v1/branches.json",
        "/api/v1/revision/24.10.4/x86/64",
        "/json/v1/releases/24.10.4/targets/x86/64/index.json",
    ):
        assert httpx.get(f"{api_url}{path}?1700000000").status_code in (200, 202), path
    assert httpx.get(f"{api_url}/api/v1/overview?1700000000").status_code == 301


def test_item_11_comma_profile_and_null_rootfs_size(api_url: str) -> None:
    body = build_body(target="ath79/generic", profile="tplink,archer-c7-v5", rootfs_size_mb=None)
    response = _post(api_url, body)
    assert response.status_code in (200, 202), response.text


def test_item_12_empty_defaults_repositories_and_keys(api_url: str) -> None:
    body = build_body(defaults="", repositories={}, repository_keys=[])
    response = _post(api_url, body)
    assert response.status_code in (200, 202), response.text


def test_item_13_packages_versions_without_packages(api_url: str) -> None:
    index = httpx.get(f"{api_url}/json/v1/releases/24.10.4/packages/x86_64-index.json").json()
    name = sorted(index)[0]
    body = build_body(packages_versions={name: index[name]})
    del body["packages"]
    response = _post(api_url, body)
    assert response.status_code in (200, 202), response.text


def test_item_14_enqueue_quickly(api_url: str) -> None:
    started = time.monotonic()
    response = _post(api_url, build_body(target="ath79/generic", profile="tplink_archer-c7-v2"))
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert elapsed < 2.0, f"POST took {elapsed:.2f} s"


def test_item_14_unknown_profile_is_answered_before_queueing(api_url: str) -> None:
    assert_error(_post(api_url, build_body(target="mediatek/filogic", profile="nosuch-device")), 400)
