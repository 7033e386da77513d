"""Per-client build rate in Redis (ported from the limiter parts of tests/security/test_rate_limit.py):
counters shared by every daemon, a Retry-After within the window, and fail-open when Redis is away."""

from __future__ import annotations

import time

import pytest_twisted
from twisted.internet.task import Clock

from asud.store.rate_limit import WINDOW_SECONDS, RateLimiter, create_rate_limiter
from asud.store.redis import Redis
from tests.store.support import TIMEOUT, redis
from tests.support.redis import RedisProcess

__all__ = ["redis"]


@pytest_twisted.ensureDeferred
async def test_redis_counters_are_shared_by_daemons(redis: Redis, redis_server: RedisProcess) -> None:
    clock = Clock()
    clock.advance(1_800_000_000 + 10)  # 10 s into a window: 50 s left
    other = Redis.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        one, two = RateLimiter(redis, 3, clock=clock), RateLimiter(other, 3, clock=clock)
        assert [await one.hit("ip:192.0.2.1"), await two.hit("ip:192.0.2.1"),
                await one.hit("ip:192.0.2.1")] == [None] * 3
        wait = await two.hit("ip:192.0.2.1")
        assert wait == 50 and 1 <= wait <= WINDOW_SECONDS
        clock.advance(5)
        assert await one.hit("ip:192.0.2.1") == 45  # refused hits do not count, nor extend the wait
        assert await one.hit("ip:192.0.2.2") is None
        assert await two.hit("ip:192.0.2.1") == 45
        clock.advance(45)  # the next window
        assert await one.hit("ip:192.0.2.1") is None
    finally:
        await other.disconnect()
    ttl = await redis.call("TTL", f"asud:rate:ip:192.0.2.1:{int(clock.seconds() // 60)}")
    assert 0 < ttl <= 2 * WINDOW_SECONDS


@pytest_twisted.ensureDeferred
async def test_redis_down_fails_open(redis: Redis, redis_server: RedisProcess) -> None:
    limiter = create_rate_limiter(1, redis)
    assert limiter is not None and create_rate_limiter(0, redis) is None
    redis_server.stop()
    started = time.monotonic()
    assert await limiter.hit("ip:192.0.2.1") is None and await limiter.hit("ip:192.0.2.1") is None
    assert await limiter.hit("ip:192.0.2.1") is None
    assert time.monotonic() - started < 3 * TIMEOUT + 0.5
