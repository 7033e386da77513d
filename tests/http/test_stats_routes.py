"""``/api/v1/stats/*`` reflect a scripted sequence of requests exactly (a server with empty statistics)
(was tests/api/test_routes_stats.py).

The script records what the build routes record for each request (``record_validated``'s fields) and what
the pool records for each finished build, then reads everything back over HTTP through the root resource.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest_twisted

from asud.http.root import make_resource
from asud.http.state import AsudApp
from asud.store.files import Store
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from asud.store.stats import StatsRecorder
from asud.store.stats_queries import StatsQueries
from tests.catalog.helpers import load_demo_catalog
from tests.http.client import StubClient
from tests.http.conftest import make_config
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

X86 = {"distro": "openwrt", "version": "24.10.4", "target": "x86/64", "profile": "generic",
       "packages": ["htop"]}
ARCHER = {"distro": "openwrt", "version": "24.10.4", "target": "ath79/generic",
          "profile": "tplink_archer-c7-v5", "packages": ["luci", "base-files"]}
BIN_DIR = "c" * 64


@attrs.define
class Scripted:
    client: StubClient
    app: AsudApp
    redis_server: RedisProcess


async def run_script(app: AsudApp) -> None:
    """v1 A (miss), v1 A again (miss), legacy B (miss), A built, B failed, v1 A (hit); a rejected request
    records nothing."""
    stats = app.stats

    async def request(body: dict[str, Any], api: str, client: str, hit: bool) -> None:
        stats.record_request(api=api, client=client, request_hash="0" * 64, has_defaults=False,
                             cache_hit=hit, **body)
        assert await stats.flush()  # counted in memory until a flush writes it

    await request(X86, "v1", "script/1", False)
    await request(X86, "v1", "script/2", False)
    await request(ARCHER, "build-request", "legacy-ua/1", False)
    now = app.clock.seconds()
    app.files.write_text(BIN_DIR, "build.log", "built\n")
    assert await stats.record_build("a" * 64, outcome="done", job=X86, started_at=now - 0.5, finished_at=now,
                                    result={"manifest": {"base-files": "1", "busybox": "2"}, "images": []})
    assert await stats.record_build("b" * 64, outcome="failed", job=ARCHER, started_at=now - 0.2,
                                    finished_at=now, error_kind="BuildError")
    await request(X86, "v1", "script/1", True)


@pytest_twisted.async_yield_fixture
async def scripted(tmp_path: Path, redis_server: RedisProcess) -> AsyncIterator[Scripted]:
    """An app over its own Redis with empty statistics, after :func:`run_script`."""
    config = make_config(tmp_path / "data", redis={"url": redis_server.url, "timeout": 0.5})
    redis = Redis.from_url(redis_server.url, timeout=config.redis.timeout)
    app = AsudApp(config=config, files=Store(config.store_dir), redis=redis,
                  records=BuildRecords.from_config(redis, config),
                  stats=StatsRecorder(redis, retention=config.retention.stats),
                  stats_queries=StatsQueries(redis, retention=config.retention.stats))
    try:
        await run_script(app)
        yield Scripted(StubClient(make_resource(app)), app, redis_server)
    finally:
        await redis.disconnect()


@pytest_twisted.ensureDeferred
async def test_popular_packages(scripted: Scripted) -> None:
    answer = await scripted.client.get("/api/v1/stats/popular_packages")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == [
        {"package_name": "htop", "count": 3},
        {"package_name": "base-files", "count": 1},
        {"package_name": "luci", "count": 1},
    ]


@pytest_twisted.ensureDeferred
async def test_popular_targets(scripted: Scripted) -> None:
    assert (await scripted.client.get("/api/v1/stats/popular_targets")).json() == [
        {"target": "x86", "subtarget": "64", "count": 3, "build_seconds": 0},
        {"target": "ath79", "subtarget": "generic", "count": 1, "build_seconds": None},
    ]


@pytest_twisted.ensureDeferred
async def test_images(scripted: Scripted) -> None:
    images = await scripted.client.get("/api/v1/stats/images")
    assert images.json() == {"total": 4, "stored": 1, "requested": 0}
    assert images.headers["access-control-allow-origin"] == "*"  # under /api: CORS, as every answer
    head = await scripted.client.head("/api/v1/stats/images")
    assert head.status_code == 200 and head.content == b""


@pytest_twisted.ensureDeferred
async def test_packages(scripted: Scripted, demo_tree: DemoTree) -> None:
    waiting = await scripted.client.get("/api/v1/stats/packages")
    assert waiting.status_code == 503
    assert waiting.json()["detail"] == "The catalog is still loading, retry in a few seconds"
    scripted.app.catalog = SimpleNamespace(catalog=await load_demo_catalog(demo_tree))
    known = (await scripted.client.get("/api/v1/stats/packages")).json()["packages"]
    # 193 over the demo tree, as the previous server counted over its synced feeds
    assert known > 150 and (await scripted.client.get("/api/v1/stats/packages")).json() == {"packages": known}


@pytest_twisted.ensureDeferred
async def test_timeseries(scripted: Scripted) -> None:
    client = scripted.client
    today = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
    document = (await client.get("/api/v1/stats/timeseries?by=target&days=2")).json()
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
    hourly = (await client.get("/api/v1/stats/timeseries?period=hour&by=total")).json()
    assert sum(point["count"] for point in hourly["requests"]) == 4
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+", "%2B")
    empty = await client.get(f"/api/v1/stats/timeseries?since={future}&until={future}x")
    assert empty.status_code == 400
    assert (await client.get("/api/v1/stats/timeseries?period=week")).status_code == 400


@pytest_twisted.ensureDeferred
async def test_timeseries_refusals_say_what_the_previous_server_said(scripted: Scripted) -> None:
    not_whole = "Input should be a valid integer, unable to parse string as an integer"
    bad_window = "Invalid window: since must be before until, and at most ten years apart"
    refusals = {
        "period=week": "Invalid request: query.period: Input should be 'hour' or 'day'",
        "by=x": "Invalid request: query.by: Input should be 'version', 'target' or 'total'",
        "days=0": "Invalid request: query.days: Input should be greater than or equal to 1",
        "days=abc": f"Invalid request: query.days: {not_whole}",
        "days=3661": "Invalid request: query.days: Input should be less than or equal to 3660",
        "limit=51": "Invalid request: query.limit: Input should be less than or equal to 50",
        "limit=abc&days=abc&by=q&period=z": "Invalid request: query.period: Input should be 'hour' or 'day'; "
        f"query.by: Input should be 'version', 'target' or 'total'; query.days: {not_whole}; "
        f"query.limit: {not_whole}",
        "since=garbage": "Invalid parameter: since must be an ISO 8601 time",
        "since=2026-01-01&until=abc": "Invalid parameter: until must be an ISO 8601 time",
        "since=2026-01-02&until=2026-01-01": bad_window,
        "since=2010-01-01&until=2026-01-01": bad_window,
    }
    for query, detail in refusals.items():
        answer = await scripted.client.get(f"/api/v1/stats/timeseries?{query}")
        assert (answer.status_code, answer.json()) == (400, {"status": 400, "detail": detail}), query
    # what pydantic accepted as whole numbers, and the last of a repeated parameter
    for query in ("days=7.0", "days=%207", "days=%2B7", "days=1_0", "days=abc&days=1"):
        assert (await scripted.client.get(f"/api/v1/stats/timeseries?{query}")).status_code == 200, query
    answer = await scripted.client.get("/api/v1/stats/timeseries?since=2026-01-01&until=2026-01-02T00:00Z")
    window = answer.json()
    assert (window["since"], window["until"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert window["period"] == "day" and window["by"] == "version" and window["requests"] == []


@pytest_twisted.ensureDeferred
async def test_redis_down_is_a_503_within_a_second(scripted: Scripted) -> None:
    scripted.redis_server.stop()
    started = datetime.now(UTC)
    for path in ("/api/v1/stats/popular_packages", "/api/v1/stats/timeseries", "/api/v1/stats/images"):
        answer = await scripted.client.get(path)
        assert answer.status_code == 503, path
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["title"] == "Service Unavailable"
    assert datetime.now(UTC) - started < timedelta(seconds=3)
