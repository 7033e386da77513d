"""Requests counted in memory and written in batches: what sysup's statistics buffer promised
(was tests/stats/test_buffer.py), now with Redis underneath.

A cache-hit POST must not pay a Redis round trip for its statistics, so the recorder counts requests in
memory and a flush (once a second, and when the daemon stops) writes them with one script call. These
tests check what an operator would notice: every request counted once a flush happened, nothing lost on
stop, nothing lost while Redis is briefly away, refused writes not retried forever, memory bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogEvent, formatEvent, globalLogPublisher

from asud.store import stats_keys as keys
from asud.store.stats import StatsRecorder
from asud.store.stats_queries import StatsQueries
from tests.store.stats_support import NOW, clock_at, connect, recorder_and_queries, stats_redis
from tests.support.redis import RedisProcess

__all__ = ["stats_redis"]


def event(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        api="v1",
        client="luci/1",
        distro="openwrt",
        version="24.10.4",
        target="ath79/generic",
        profile="tplink_archer-c7-v5",
        request_hash="a" * 64,
        packages=("luci", "-ppp", "+owut"),
        has_defaults=False,
        cache_hit=True,
        at=NOW,
    )
    values.update(overrides)
    return values


async def written(recorder: StatsRecorder, clock: Clock, *, within: float = 10.0) -> None:
    """Let the flush timer tick (fake time) until everything counted is in Redis (real time)."""
    waited = 0.0
    while recorder.pending():
        clock.advance(1)
        await deferLater(reactor, 0.05, lambda: None)  # type: ignore[arg-type]
        waited += 0.05
        assert waited < within, f"{recorder.pending()} requests still not written"


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log line emitted during the test."""
    lines: list[str] = []

    def observer(log_event: LogEvent) -> None:
        lines.append(formatEvent(log_event))

    globalLogPublisher.addObserver(observer)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observer)


@pytest_twisted.ensureDeferred
async def test_events_are_written_with_their_packages(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    recorder.record_request(**event())
    recorder.record_request(**event(client="owut/1", packages=()))
    assert await recorder.flush()
    totals = await queries.totals()
    assert totals.requests == 2 and totals.cache_hits == 2
    assert sorted(name for name, _ in await queries.popular_clients()) == ["luci/1", "owut/1"]
    # luci and owut of the first; "-ppp" is a removal
    assert await queries.popular_packages() == [("luci", 1), ("owut", 1)]


@pytest_twisted.ensureDeferred
async def test_identical_requests_are_one_counter_until_the_flush(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    for _ in range(500):
        recorder.record_request(**event())  # the hot path: no Redis call at all
    recorder.record_request(**event(cache_hit=False, has_defaults=True, at=NOW - timedelta(hours=2)))
    assert recorder.pending() == 501
    assert (await queries.totals()).requests == 0  # nothing written yet
    assert await recorder.flush()
    assert recorder.pending() == 0
    totals = await queries.totals()
    assert (totals.requests, totals.cache_hits) == (501, 500)
    assert await queries.popular_packages() == [("luci", 501), ("owut", 501)]
    assert await stats_redis.call("HGET", keys.TOTAL, "defaults") == "1"
    # each request in its own hour, as before
    hours = [keys.hour_key(keys.bucket_start(moment, "hour")) for moment in (NOW, NOW - timedelta(hours=2))]
    assert [await stats_redis.call("HGET", hour, "req") for hour in hours] == ["500", "1"]
    assert await recorder.flush()  # nothing counted: fires at once
    assert (await queries.totals()).requests == 501


@pytest_twisted.ensureDeferred
async def test_the_timer_writes_about_once_a_second_and_stop_writes_the_rest(stats_redis: Any) -> None:
    recorder, queries, clock = recorder_and_queries(stats_redis)
    recorder.start()
    recorder.record_request(**event())
    recorder.record_request(**event())
    clock.advance(0.5)
    assert recorder.pending() == 2  # not yet due
    await written(recorder, clock)
    assert (await queries.totals()).requests == 2

    recorder.record_request(**event(client="late/1"))
    assert await recorder.stop()  # no tick needed: stopping writes it
    assert clock.getDelayedCalls() == []  # the timer is gone
    assert (await queries.totals()).requests == 3
    assert [name for name, _ in await queries.popular_clients()] == ["luci/1", "late/1"]


@pytest_twisted.ensureDeferred
async def test_refused_events_are_dropped_and_counted(stats_redis: Any) -> None:
    recorder, _, _ = recorder_and_queries(stats_redis)
    await stats_redis.call("SET", keys.TOTAL, "not a hash")  # every request script fails (WRONGTYPE)
    recorder.record_request(**event())
    recorder.record_request(**event(client="other/1"))
    assert await recorder.flush() is False
    assert recorder.dropped == 2 and recorder.pending() == 0
    assert await recorder.flush()  # not retried forever
    assert recorder.dropped == 2


@pytest_twisted.ensureDeferred
async def test_distinct_entries_are_bounded(stats_redis: Any) -> None:
    recorder = StatsRecorder(stats_redis, clock=clock_at(NOW), max_entries=2)
    _, queries, _ = recorder_and_queries(stats_redis)
    recorder.record_request(**event(client="a"))
    recorder.record_request(**event(client="b"))
    recorder.record_request(**event(client="a"))  # an existing counter always has room
    # the third distinct one starts a flush at once and takes the room it frees
    recorder.record_request(**event(client="c"))
    recorder.record_request(**event(client="d"))
    recorder.record_request(**event(client="e"))  # full again while that write is under way: dropped
    recorder.record_request(**event(client="d"))
    assert recorder.dropped == 1
    assert await recorder.flush()
    assert dict(await queries.popular_clients()) == {"a": 2, "b": 1, "c": 1, "d": 2}
    assert (await queries.totals()).requests == 6 and recorder.pending() == 0


@pytest_twisted.ensureDeferred
async def test_counts_survive_a_redis_outage(redis_server: RedisProcess, log_lines: list[str]) -> None:
    redis = connect(redis_server.url, timeout=0.3)
    clock = clock_at(NOW)
    recorder = StatsRecorder(redis, clock=clock, max_entries=3)
    recorder.start()
    try:
        redis_server.stop()
        recorder.record_request(**event(client="a"))
        recorder.record_request(**event(client="b"))
        assert await recorder.flush() is False  # Redis away: kept, not dropped
        clock.advance(1)  # the next tick tries again ...
        assert await recorder.flush() is False  # ... and fails again
        assert recorder.pending() == 2 and recorder.dropped == 0
        recorder.record_request(**event(client="c"))
        recorder.record_request(**event(client="d"))  # over the bound while Redis is away: dropped
        recorder.record_request(**event(client="a"))
        assert recorder.pending() == 4 and recorder.dropped == 1
        outage = [line for line in log_lines if line.startswith("statistics not written")]
        assert len(outage) == 1, log_lines  # once per outage, not per try

        redis_server.start()
        await written(recorder, clock)
        queries = StatsQueries(redis, clock=clock)
        assert dict(await queries.popular_clients()) == {"a": 2, "b": 1, "c": 1}
        assert (await queries.totals()).requests == 4
        assert sum("statistics written to Redis again" in line for line in log_lines) == 1
    finally:
        await recorder.stop()
        await redis.disconnect()
