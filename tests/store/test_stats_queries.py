"""The time series and popular lists the web stats page and the stats routes read
(was tests/stats/test_queries.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_twisted

from asud.store.stats_queries import percentile
from tests.store.stats_support import NOW, add_build, record, recorder_and_queries, stats_redis

__all__ = ["stats_redis"]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 0.95) is None
    assert percentile(range(1, 21), 0.95) == 19
    assert percentile([7.0], 0.95) == 7.0


@pytest_twisted.ensureDeferred
async def test_hourly_series_by_version_and_cache_rate(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW.replace(minute=1), version="24.10.4", cache_hit=True)
    await record(recorder, NOW.replace(minute=2), version="24.10.4")
    await record(recorder, NOW.replace(minute=3), version="25.12.1")
    await record(recorder, NOW - timedelta(hours=1), version="25.12.1", cache_hit=True)
    since, until = NOW - timedelta(hours=3), NOW + timedelta(hours=1)
    assert await queries.request_series(period="hour", by="version", since=since, until=until) == [
        {"bucket": "2026-11-27T11:00:00Z", "key": "25.12.1", "count": 1},
        {"bucket": "2026-11-27T12:00:00Z", "key": "24.10.4", "count": 2},
        {"bucket": "2026-11-27T12:00:00Z", "key": "25.12.1", "count": 1},
    ]
    assert await queries.cache_series(period="hour", since=since, until=until) == [
        {"bucket": "2026-11-27T11:00:00Z", "hits": 1, "misses": 0, "rate": 1.0},
        {"bucket": "2026-11-27T12:00:00Z", "hits": 1, "misses": 2, "rate": pytest.approx(1 / 3)},
    ]
    by_target = await queries.request_series(period="day", by="target", since=since, until=until)
    assert by_target == [{"bucket": "2026-11-27T00:00:00Z", "key": "ath79/generic", "count": 4}]


@pytest_twisted.ensureDeferred
async def test_build_times_mean_and_p95(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    for build_id, seconds in enumerate([10, 20, 30, 40, 100], start=1):
        started = NOW - timedelta(hours=1)
        assert await add_build(recorder, build_id, "done", started, float(seconds), manifest={})
    assert await add_build(recorder, 9, "failed", NOW - timedelta(hours=1), 500.0)
    times = await queries.build_times(since=NOW - timedelta(days=1), until=NOW)
    assert times == {"count": 5, "mean": pytest.approx(40.0), "p95": pytest.approx(100.0)}
    series = await queries.build_series(period="day", since=NOW - timedelta(days=1), until=NOW)
    assert series == [
        {"bucket": "2026-11-27T00:00:00Z", "done": 5, "failed": 1, "mean_seconds": pytest.approx(700 / 6)}
    ]
    assert await queries.popular_targets() == []  # no requests, only builds
    totals = await queries.totals()
    assert totals.builds == {"done": 5, "failed": 1}
    assert totals.build_buckets["10"] == 1 and totals.build_buckets["30"] == 3
    assert totals.build_buckets["120"] == 5 and totals.build_buckets["1800"] == 6


@pytest_twisted.ensureDeferred
async def test_popular_targets_with_mean_build_seconds(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW, target="x86/64")
    await record(recorder, NOW, target="x86/64")
    await record(recorder, NOW, target="ath79/generic")
    assert await add_build(recorder, 1, "done", NOW - timedelta(hours=1), 30.0, manifest={})
    assert await add_build(recorder, 2, "done", NOW - timedelta(hours=1), 60.0, manifest={})
    assert await queries.popular_targets() == [
        {"target": "x86/64", "count": 2, "build_seconds": pytest.approx(45.0)},
        {"target": "ath79/generic", "count": 1, "build_seconds": None},
    ]
    document = await queries.timeseries(
        period="day", by="version", since=NOW - timedelta(days=1), until=NOW + timedelta(hours=1)
    )
    assert document["popular_clients"] == [{"name": "luci/1", "count": 3}]
    assert document["popular_packages"] == [{"name": "luci", "count": 3}]
    assert document["popular_targets"] == await queries.popular_targets(since=NOW - timedelta(days=1))


@pytest_twisted.ensureDeferred
async def test_popular_lists_keep_ties_past_the_limit_in_name_order(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    for client, times in (("d", 3), ("c", 2), ("a", 2), ("b", 2), ("e", 1)):
        for _ in range(times):
            await record(recorder, NOW, client=client)
    assert await queries.popular_clients(limit=2) == [("d", 3), ("a", 2)]
    top = await queries.popular_clients(limit=3, since=NOW - timedelta(days=2))
    assert top == [("d", 3), ("a", 2), ("b", 2)]


@pytest_twisted.ensureDeferred
async def test_windows_resolve_to_whole_hours_and_whole_days(stats_redis: Any) -> None:
    """A window reads the hours it overlaps on its partial days and whole days in between; a day before
    the retention is only known whole."""
    recorder, queries, _ = recorder_and_queries(stats_redis)
    for hours_ago in (0, 5, 30, 50):
        await record(recorder, NOW - timedelta(hours=hours_ago), client=f"{hours_ago}h")
    since = NOW - timedelta(hours=31)  # 05:30 on the 26th: its 06:30 request is in, the 25th's is not
    window = await queries.window(since, NOW + timedelta(minutes=1))
    assert sorted(window.clients) == ["0h", "30h", "5h"]
    assert [(bucket.start.strftime("%dT%H"), bucket.period) for bucket in window.buckets][:2] == [
        ("26T05", "hour"),
        ("26T06", "hour"),
    ]
    # a window of whole days reads each day's key
    days = await queries.window(datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
    assert [bucket.period for bucket in days.buckets] == ["day", "day", "day"]
    assert sum(days.clients.values()) == 4


@pytest_twisted.ensureDeferred
async def test_a_ten_year_window_in_hours_is_one_read(stats_redis: Any) -> None:
    """The longest window the API allows, hourly: thousands of keys in one script (unions in batches)."""
    recorder, queries, _ = recorder_and_queries(stats_redis)
    await record(recorder, NOW - timedelta(days=3000), client="early")
    await record(recorder, NOW, client="late")
    window = await queries.window(NOW - timedelta(days=3660), NOW + timedelta(hours=1), period="hour")
    assert len(window.buckets) > 5000
    assert window.clients == {"early": 1, "late": 1} and window.packages == {"luci": 2}
    assert [point["count"] for point in window.request_series("hour", "total")] == [1]
    assert [point["count"] for point in window.request_series("day", "total")] == [1, 1]
