"""What the statistics tests share: a Redis client on the test's own ``redis-server``, a fake clock at a
fixed moment, and the recorder calls of sysup's tests (``record``, ``add_build``).

``stats_redis`` is an ``asud.store.redis.Redis`` on the test's ``redis-server``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_twisted
from twisted.internet.task import Clock

from asud.store.redis import Redis
from asud.store.stats import StatsRecorder
from asud.store.stats_queries import StatsQueries
from tests.support.redis import RedisProcess

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
RETENTION = 90 * 86400.0
TIMEOUT = 5.0


def connect(url: str, timeout: float = TIMEOUT) -> Redis:
    return Redis.from_url(url, timeout=timeout)


@pytest_twisted.async_yield_fixture
async def stats_redis(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    """A client of this test's ``redis-server``."""
    redis = connect(redis_server.url)
    try:
        yield redis
    finally:
        await redis.disconnect()


def clock_at(moment: datetime) -> Clock:
    clock = Clock()
    clock.advance(moment.timestamp())
    return clock


def recorder_and_queries(
    redis: Redis, now: datetime = NOW, retention: float = RETENTION
) -> tuple[StatsRecorder, StatsQueries, Clock]:
    clock = clock_at(now)
    return (
        StatsRecorder(redis, retention=retention, clock=clock),
        StatsQueries(redis, retention=retention, clock=clock),
        clock,
    )


async def record(recorder: StatsRecorder, at: datetime, **overrides: Any) -> None:
    """One request as sysup's tests recorded it (the same defaults), written to Redis."""
    values: dict[str, Any] = dict(
        api="v1",
        client="luci/1",
        distro="openwrt",
        version="24.10.4",
        target="ath79/generic",
        profile="tplink_archer-c7-v5",
        request_hash="a" * 64,
        packages=["luci", "-ppp"],
        has_defaults=False,
        cache_hit=False,
        at=at,
    )
    values.update(overrides)
    recorder.record_request(**values)
    assert await recorder.flush()  # counted in memory until a flush writes it


async def add_build(
    recorder: StatsRecorder,
    build_id: int,
    status: str,
    started: datetime,
    seconds: float,
    manifest: dict[str, str] | None = None,
    error_kind: str | None = None,
    target: str = "x86/64",
) -> bool:
    """A finished build as the pool reports it (sysup's ``add_build`` + ``collect_builds`` in one)."""
    return await recorder.record_build(
        f"{build_id:064x}",
        outcome=status,
        job={"distro": "openwrt", "version": "24.10.4", "target": target, "profile": "generic"},
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
        result={"manifest": manifest} if manifest is not None else None,
        error_kind=error_kind,
    )


__all__ = [
    "NOW",
    "RETENTION",
    "add_build",
    "clock_at",
    "connect",
    "record",
    "recorder_and_queries",
    "stats_redis",
]
