"""``/api/v1/build`` on a server without a worker: validation answers, queue answers, status polling."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from sysup.api.routes_build import client_name
from tests.api.helpers import assert_error, build_body
from tests.api.live_server import live_server

QUEUED_KEYS = {"status", "detail", "queue_position", "request_hash", "enqueued_at"}


def test_post_queues_and_get_head_mirror_it(api_url: str) -> None:
    posted = httpx.post(f"{api_url}/api/v1/build", json=build_body())
    assert posted.status_code == 202, posted.text
    body = posted.json()
    assert set(body) == QUEUED_KEYS
    assert body["status"] == 202 and body["detail"] == "queued"
    assert isinstance(body["queue_position"], int) and len(body["request_hash"]) == 64
    assert posted.headers["x-imagebuilder-status"] == "queued"
    assert posted.headers["x-queue-position"] == str(body["queue_position"])

    url = f"{api_url}/api/v1/build/{body['request_hash']}"
    polled = httpx.get(url)
    assert polled.status_code == 202 and polled.json() == body
    head = httpx.head(url)
    assert head.status_code == 202 and head.content == b""
    assert head.headers["x-imagebuilder-status"] == "queued"
    assert head.headers["x-queue-position"] == str(body["queue_position"])


def test_identical_requests_share_one_hash(api_url: str) -> None:
    request = build_body()
    first = httpx.post(f"{api_url}/api/v1/build", json=request).json()
    second = httpx.post(f"{api_url}/api/v1/build", json={**request, "client": "other/2"}).json()
    assert first["request_hash"] == second["request_hash"]


def test_unknown_hash_is_404_json(bare_url: str) -> None:
    response = httpx.get(f"{bare_url}/api/v1/build/{'0' * 64}")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "title": "Not Found",
        "detail": "could not find provided request hash",
    }
    assert httpx.head(f"{bare_url}/api/v1/build/{'0' * 64}").status_code == 404
    assert httpx.get(f"{bare_url}/api/v1/build/..%2F..%2Fetc").status_code == 404


def test_post_on_a_hash_is_405_json(bare_url: str) -> None:
    assert_error(httpx.post(f"{bare_url}/api/v1/build/{'0' * 64}", json=build_body()), 405)


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
def test_schema_errors_are_400_with_a_string_detail(bare_url: str, body: dict[str, Any]) -> None:
    assert_error(httpx.post(f"{bare_url}/api/v1/build", json=body), 400)


def test_not_json_is_400(bare_url: str) -> None:
    response = httpx.post(
        f"{bare_url}/api/v1/build", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert assert_error(response, 400) == "Invalid request: the body is not valid JSON"


def test_catalog_errors_are_answered_at_once(api_url: str) -> None:
    # x86/64 has only "generic", which accepts any profile name (reference rule); ath79 does not.
    unknown = build_body(target="ath79/generic", profile="foo")
    detail = assert_error(httpx.post(f"{api_url}/api/v1/build", json=unknown), 400)
    assert detail.startswith("Unsupported profile: foo.")
    detail = assert_error(httpx.post(f"{api_url}/api/v1/build", json=build_body(version="99.01.0")), 400)
    assert "99.01" in detail
    detail = assert_error(
        httpx.post(f"{api_url}/api/v1/build", json=build_body(packages=["no-such-pkg"])), 400
    )
    assert "no-such-pkg" in detail
    detail = assert_error(httpx.post(f"{api_url}/api/v1/build", json=build_body(defaults="echo hi")), 400)
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
def test_impossible_requests_are_refused_and_never_queued(
    api_url: str, fields: dict[str, Any], expected: str
) -> None:
    before = httpx.get(f"{api_url}/api/v1/stats").json()["queue_length"]
    detail = assert_error(httpx.post(f"{api_url}/api/v1/build", json=build_body(**fields)), 400)
    assert expected in detail.lower()
    assert httpx.get(f"{api_url}/api/v1/stats").json()["queue_length"] == before


def test_overloaded_queue_is_529_with_retry_after(queued_settings: Any) -> None:
    from sysup.api.app import create_app

    with live_server(create_app(queued_settings.model_copy(update={"max_pending_jobs": 0}))) as url:
        response = httpx.post(f"{url}/api/v1/build", json=build_body())
    assert_error(response, 529)
    assert int(response.headers["retry-after"]) > 0


def test_client_name_comes_from_the_body_or_auc_user_agent() -> None:
    assert client_name("luci/1", "Mozilla") == "luci/1"
    assert client_name(None, "auc/0.3.2-1") == "auc/0.3.2-1"
    assert client_name(None, "curl/8") == "unknown"


def test_state_is_typed(bare_state: Any) -> None:
    assert dataclasses.is_dataclass(bare_state)
    assert bare_state.settings.default_distro == "openwrt"
