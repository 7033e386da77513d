"""``/api/v1/stats/*`` reflect a scripted sequence of requests exactly (a server with empty statistics)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sysup.config import Settings
from tests.api.live_server import live_server
from tests.stats.server import finish, fresh_settings

X86 = {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": ["htop"]}


@pytest.fixture(scope="module")
def scripted(
    tmp_path_factory: pytest.TempPathFactory, queued_settings: Settings
) -> Iterator[tuple[str, Any]]:
    """A worker-less server after: v1 A (miss), v1 A again (miss), legacy B (miss), A built, B failed,
    v1 A (hit), and one rejected request."""
    from sysup.api.app import create_app

    app = create_app(fresh_settings(queued_settings, tmp_path_factory.mktemp("api-stats")))
    with live_server(app) as url:
        state = app.state.api
        first = httpx.post(f"{url}/api/v1/build", json={**X86, "client": "script/1"})
        assert first.status_code == 202, first.text
        assert httpx.post(f"{url}/api/v1/build", json={**X86, "client": "script/2"}).status_code == 202
        legacy = httpx.post(
            f"{url}/api/build-request",
            headers={"User-Agent": "legacy-ua/1"},
            json={
                "version": "24.10.4",
                "target": "ath79/generic",
                "board": "tplink,archer-c7-v5",
                "packages": ["luci", "base-files"],
            },
        )
        assert legacy.status_code == 202, legacy.text
        finish(state, first.json()["request_hash"], ok=True)
        finish(state, legacy.json()["request_hash"], ok=False)
        hit = httpx.post(f"{url}/api/v1/build", json={**X86, "client": "script/1"})
        assert hit.status_code == 200, hit.text
        rejected = httpx.post(f"{url}/api/v1/build", json={**X86, "packages": ["no-such-package"]})
        assert rejected.status_code == 400
        yield url, state


def test_popular_packages(scripted: tuple[str, Any]) -> None:
    url, _ = scripted
    assert httpx.get(f"{url}/api/v1/stats/popular_packages").json() == [
        {"package_name": "htop", "count": 3},
        {"package_name": "base-files", "count": 1},
        {"package_name": "luci", "count": 1},
    ]


def test_popular_targets(scripted: tuple[str, Any]) -> None:
    url, _ = scripted
    assert httpx.get(f"{url}/api/v1/stats/popular_targets").json() == [
        {"target": "x86", "subtarget": "64", "count": 3, "build_seconds": 0},
        {"target": "ath79", "subtarget": "generic", "count": 1, "build_seconds": None},
    ]


def test_images_and_packages(scripted: tuple[str, Any]) -> None:
    url, _ = scripted
    assert httpx.get(f"{url}/api/v1/stats/images").json() == {"total": 4, "stored": 1, "requested": 0}
    known = httpx.get(f"{url}/api/v1/stats/packages").json()["packages"]
    assert known > 150 and httpx.get(f"{url}/api/v1/stats/packages").json() == {"packages": known}


def test_timeseries(scripted: tuple[str, Any]) -> None:
    url, _ = scripted
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    document = httpx.get(f"{url}/api/v1/stats/timeseries", params={"by": "target", "days": 2}).json()
    assert document["requests"] == [
        {"bucket": today, "key": "ath79/generic", "count": 1},
        {"bucket": today, "key": "x86/64", "count": 3},
    ]
    assert document["cache"] == [{"bucket": today, "hits": 1, "misses": 3, "rate": 0.25}]
    [builds] = document["builds"]
    assert builds["done"] == 1 and builds["failed"] == 1
    assert document["build_times"]["count"] == 1 and document["build_times"]["p95"] is not None
    assert document["popular_clients"] == [
        {"name": "script/1", "count": 2},
        {"name": "legacy-ua/1", "count": 1},
        {"name": "script/2", "count": 1},
    ]
    hourly = httpx.get(f"{url}/api/v1/stats/timeseries", params={"period": "hour", "by": "total"}).json()
    assert sum(point["count"] for point in hourly["requests"]) == 4
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    empty = httpx.get(f"{url}/api/v1/stats/timeseries", params={"since": future, "until": future + "x"})
    assert empty.status_code == 400
    assert httpx.get(f"{url}/api/v1/stats/timeseries", params={"period": "week"}).status_code == 400
