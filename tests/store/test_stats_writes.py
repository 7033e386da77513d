"""Writes in flight: what sysup's statistics buffer promised, kept without a buffer
(was tests/stats/test_buffer.py).

sysup batched the statistics of cache-hit POSTs in memory because a SQL transaction per answer cost more
than the answer. A record is now one asynchronous Redis round-trip, so the hot path fires it without
waiting; what the buffer's tests checked still holds: events reach the store, nothing is lost on stop
(``flush``), refused events are dropped and counted (not retried forever), and a Redis that stops
answering cannot make writes pile up without bound.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest_twisted

from asud.store import stats_keys as keys
from asud.store.stats import StatsRecorder
from tests.store.stats_support import NOW, clock_at, record, recorder_and_queries, stats_redis

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


@pytest_twisted.ensureDeferred
async def test_events_are_written_with_their_packages(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    assert await recorder.record_request(**event())
    assert await recorder.record_request(**event(client="owut/1", packages=()))
    totals = await queries.totals()
    assert totals.requests == 2 and totals.cache_hits == 2
    assert sorted(name for name, _ in await queries.popular_clients()) == ["luci/1", "owut/1"]
    # luci and owut of the first; "-ppp" is a removal
    assert await queries.popular_packages() == [("luci", 1), ("owut", 1)]


@pytest_twisted.ensureDeferred
async def test_writes_not_waited_for_are_complete_after_flush(stats_redis: Any) -> None:
    recorder, queries, _ = recorder_and_queries(stats_redis)
    recorder.record_request(**event())  # the hot path does not wait
    recorder.record_request(**event(request_hash="b" * 64))
    assert recorder.pending() == 2
    await recorder.flush()
    assert recorder.pending() == 0
    assert (await queries.totals()).requests == 2
    await recorder.flush()  # nothing in flight: fires at once


@pytest_twisted.ensureDeferred
async def test_refused_events_are_dropped_and_counted(stats_redis: Any) -> None:
    recorder, _, _ = recorder_and_queries(stats_redis)
    await stats_redis.call("SET", keys.TOTAL, "not a hash")  # every request script fails
    first, second = recorder.record_request(**event()), recorder.record_request(**event())
    await recorder.flush()
    assert await first is False and await second is False
    assert recorder.dropped == 2
    await recorder.flush()
    assert recorder.dropped == 2 and recorder.pending() == 0  # not retried forever


@pytest_twisted.ensureDeferred
async def test_new_events_are_dropped_beyond_the_bound(stats_redis: Any) -> None:
    recorder = StatsRecorder(stats_redis, clock=clock_at(NOW), max_pending=2)
    written = [recorder.record_request(**event(client=letter)) for letter in "abc"]
    assert recorder.dropped == 1
    assert [await write for write in written] == [True, True, False]
    _, queries, _ = recorder_and_queries(stats_redis)
    assert sorted(name for name, _ in await queries.popular_clients()) == ["a", "b"]
    # room again once the writes in flight are done
    await record(recorder, NOW - timedelta(minutes=1), client="d")
    assert recorder.dropped == 1
