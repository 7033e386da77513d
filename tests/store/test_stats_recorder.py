"""Recording requests and build outcomes into Redis, and the retention that replaced sysup's roll-up
(was tests/stats/test_recorder.py)."""

from __future__ import annotations

import hashlib
import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_twisted

from asud.store import stats_keys as keys
from asud.store.stats import StatsRecorder, manifest_hash, requested_names
from asud.store.stats_keys import retention_cutoff
from asud.store.stats_queries import StatsQueries
from tests.store.stats_support import (
    NOW,
    add_build,
    clock_at,
    connect,
    record,
    recorder_and_queries,
    stats_redis,
)
from tests.support.redis import RedisProcess

__all__ = ["stats_redis"]


async def dump(redis: Any) -> dict[str, Any]:
    """Every statistics key with its content (hashes and zsets as dicts, lists as lists)."""
    found: dict[str, Any] = {}
    for key in await redis.call("KEYS", f"{keys.PREFIX}:*"):
        kind = await redis.call("TYPE", key)
        if kind == "hash":
            flat = await redis.call("HGETALL", key)
        elif kind == "zset":
            flat = await redis.call("ZRANGE", key, 0, -1, "WITHSCORES")
        elif kind == "list":
            found[str(key)] = [str(item) for item in await redis.call("LRANGE", key, 0, -1)]
            continue
        else:
            found[str(key)] = await redis.call("GET", key)
            continue
        pairs = zip(flat[::2], flat[1::2], strict=True) if isinstance(flat, list) else flat.items()
        items = list(pairs)
        found[str(key)] = {str(name): float(value) for name, value in items}
    return found


def test_requested_names_skip_removals_and_plus() -> None:
    assert requested_names(["luci", "+curl", "-ppp", "luci"]) == ["luci", "curl"]


def test_manifest_hash_is_over_sorted_lines() -> None:
    expected = hashlib.sha256(b"base-files - 1\nbusybox - 2\n").hexdigest()
    assert manifest_hash({"busybox": "2", "base-files": "1"}) == expected


@pytest_twisted.ensureDeferred
async def test_request_is_recorded_without_defaults_content(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW, has_defaults=True)
    content = await dump(stats_redis)
    total = content[keys.TOTAL]
    assert total["defaults"] == 1 and total["miss"] == 1 and "hit" not in total
    assert await queries.popular_clients() == [("luci/1", 1)]
    assert await queries.popular_packages() == [("luci", 1)]
    # nothing of a defaults script can be given, so nothing of it is stored
    assert "defaults" not in inspect.signature(StatsRecorder.record_request).parameters
    assert not any("defaults_hash" in key or "defaults_hash" in str(value) for key, value in content.items())


@pytest_twisted.ensureDeferred
async def test_recording_into_a_redis_that_refuses_does_not_raise(
    stats_redis: Any, redis_server: RedisProcess
) -> None:
    recorder, _, _ = recorder_and_queries(stats_redis)
    await stats_redis.call("SET", keys.TOTAL, "not a hash")  # every request script fails (WRONGTYPE)
    recorder.record_request(
        api="v1", client="x", distro="openwrt", version="1", target="a/b", profile="p", request_hash="h",
        packages=[], has_defaults=False, cache_hit=False,
    )
    assert await recorder.flush() is False
    assert recorder.dropped == 1
    # a Redis that is gone: the write times out, and still nothing raises
    redis_server.stop()
    quick = connect(redis_server.url, timeout=0.3)
    try:
        gone = StatsRecorder(quick, clock=clock_at(NOW))
        assert await gone.record_build("k", outcome="done", job={}, started_at=None) is False
        assert gone.dropped == 1
    finally:
        await quick.disconnect()


@pytest_twisted.ensureDeferred
async def test_builds_counted_once_with_duration_and_manifest(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    manifest = {"busybox": "1.36"}
    five, four = NOW - timedelta(minutes=5), NOW - timedelta(minutes=4)
    assert await add_build(recorder, 1, "done", five, 42.0, manifest=manifest)
    assert await add_build(recorder, 2, "failed", four, 3.0, error_kind="ImageTooBig")
    # the same builds again (the same image key and finish time) are not counted twice
    assert not await add_build(recorder, 1, "done", five, 42.0, manifest=manifest)
    assert not await add_build(recorder, 2, "failed", four, 3.0, error_kind="ImageTooBig")
    totals = await queries.totals()
    assert totals.builds == {"done": 1, "failed": 1}
    assert totals.build_seconds_sum == 45.0
    times = await queries.build_times(since=NOW - timedelta(hours=1), until=NOW)
    assert times == {"count": 1, "mean": 42.0, "p95": 42.0}  # durations of successful builds only
    assert await queries.image_keys_for_manifest(manifest_hash(manifest)) == [f"{1:064x}"]
    content = await dump(stats_redis)
    assert content[keys.TOTAL]["err|ImageTooBig"] == 1
    assert [key for key in content if ":manifest:" in key] == [keys.manifest_key(manifest_hash(manifest))]


@pytest_twisted.ensureDeferred
async def test_retention_keeps_totals_exact_and_expires_hourly_numbers(stats_redis: Any) -> None:
    retention = 3 * 86400.0
    old = NOW - timedelta(days=10)
    # events recorded as they happened: ten days ago, and now
    then, _, _ = recorder_and_queries(stats_redis, now=old + timedelta(hours=1), retention=retention)
    await record(then, old, packages=["luci", "curl"], cache_hit=True)
    await record(then, old + timedelta(hours=1), client="owut/1", packages=["luci"])
    assert await add_build(then, 7, "done", old, 20.0, manifest={})
    recorder, queries, _ = recorder_and_queries(stats_redis, retention=retention)
    await record(recorder, NOW - timedelta(hours=1), packages=["luci"])
    assert await add_build(recorder, 8, "done", NOW - timedelta(hours=2), 100.0, manifest={})

    assert retention_cutoff(NOW, timedelta(seconds=retention)) == datetime(2026, 11, 24, tzinfo=UTC)
    before = await queries.totals()
    assert before.requests == 3 and before.cache_hits == 1 and before.builds == {"done": 2}
    assert await queries.popular_packages() == [("luci", 3), ("curl", 1)]
    assert await queries.popular_clients() == [("luci/1", 2), ("owut/1", 1)]
    assert await queries.popular_targets() == [
        {"target": "ath79/generic", "count": 3, "build_seconds": None}
    ]

    # Hourly keys live until their day falls before the cutoff; daily keys and totals forever.
    hour_ttl = await stats_redis.call("TTL", keys.hour_key(NOW - timedelta(hours=1)))
    assert abs(hour_ttl - (11.5 * 3600 + retention)) < 5
    old_ttl = await stats_redis.call("TTL", keys.hour_key(old))
    assert abs(old_ttl - (10.5 * 3600 + retention)) < 5  # seen from ten days ago
    assert await stats_redis.call("TTL", keys.day_key(old)) == -1
    assert await stats_redis.call("TTL", keys.TOTAL) == -1

    # A build that finished before the cutoff is not counted (sysup collected none), nor one counted twice.
    assert not await add_build(recorder, 9, "done", old, 20.0, manifest={})
    assert not await add_build(recorder, 8, "done", NOW - timedelta(hours=2), 100.0, manifest={})
    # A late request from before the cutoff counts in the day and the totals, not in any hour.
    await record(recorder, old + timedelta(hours=2), client="late/1", packages=[])
    assert not await stats_redis.call("EXISTS", keys.hour_key(old + timedelta(hours=2)))
    assert (await queries.totals()).requests == 4

    # the daily series still reaches the old day; hourly numbers and percentiles do not
    series = await queries.request_series(
        period="day", by="total", since=old - timedelta(days=1), until=NOW + timedelta(hours=1)
    )
    assert [(point["bucket"], point["count"]) for point in series] == [
        ("2026-11-17T00:00:00Z", 3),
        ("2026-11-27T00:00:00Z", 1),
    ]
    hourly = await queries.request_series(
        period="hour", by="total", since=old - timedelta(days=1), until=NOW + timedelta(hours=1)
    )
    assert hourly == [{"bucket": "2026-11-27T11:00:00Z", "key": "total", "count": 1}]
    times = await queries.build_times(since=old - timedelta(days=1), until=NOW)
    assert times["count"] == 1 and times["mean"] == 100.0


@pytest_twisted.ensureDeferred
async def test_a_script_unknown_to_redis_is_sent_whole(stats_redis: Any) -> None:
    """After a Redis restart (or ``SCRIPT FLUSH``) the scripts are sent again with ``EVAL``."""
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW)
    await stats_redis.call("SCRIPT", "FLUSH")
    await record(recorder, NOW)
    assert (await queries.totals()).requests == 2
    assert await queries.popular_packages(since=NOW - timedelta(hours=1)) == [("luci", 2)]


@pytest_twisted.ensureDeferred
async def test_numbers_in_names_stay_names(stats_redis: Any) -> None:
    """A version, client or package that looks like a number comes back as the same text."""
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW, version="24.10", client="1.50", packages=["1e3", "007"])
    series = await queries.request_series(
        period="hour", by="version", since=NOW - timedelta(hours=1), until=NOW + timedelta(hours=1)
    )
    assert [point["key"] for point in series] == ["24.10"]
    assert await queries.popular_clients(since=NOW - timedelta(hours=1)) == [("1.50", 1)]
    assert await queries.popular_packages(since=NOW - timedelta(hours=1)) == [("007", 1), ("1e3", 1)]
    assert await queries.popular_packages() == [("007", 1), ("1e3", 1)]


@pytest_twisted.ensureDeferred
async def test_recorder_and_queries_default_to_the_reactor_clock(stats_redis: Any) -> None:
    recorder, queries = StatsRecorder(stats_redis), StatsQueries(stats_redis)
    await record(recorder, datetime.now(UTC))
    day = await queries.request_series(
        period="day", by="total", since=datetime.now(UTC) - timedelta(days=1), until=datetime.now(UTC)
    )
    assert sum(point["count"] for point in day) == 1
