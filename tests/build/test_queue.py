"""The build queue on a real ``redis-server``: one delivery per entry, leases, and a dead daemon's work
claimed by a live one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from asud.build.queue import QUEUE_KEY, BuildQueue, QueueEntry
from asud.errors import Unavailable
from asud.store.redis import Redis
from tests.store.support import TIMEOUT, redis
from tests.support.redis import RedisProcess

__all__ = ["redis"]

LEASE = 0.3


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


@pytest_twisted.async_yield_fixture
async def other(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    """A second daemon's connection to the same server."""
    client = Redis.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        yield client
    finally:
        await client.disconnect()


@pytest_twisted.ensureDeferred
async def test_add_take_ack(redis: Redis) -> None:
    queue = BuildQueue(redis, lease_timeout=LEASE)
    assert await queue.take("a", block=0) is None  # no group yet: made on the way
    first = await queue.add("k1")
    await queue.add("k2")
    entry = await queue.take("a", block=0.1)
    assert entry == QueueEntry(first, "k1", "a", 1)
    assert await queue.pending() == 1 and await queue.length() == 2
    await queue.ack(entry)
    assert await queue.pending() == 0 and await queue.length() == 1
    second = await queue.take("a", block=0)
    assert second is not None and second.image_key == "k2"
    await queue.ack(second)
    assert await queue.length() == 0
    started = time.monotonic()
    assert await queue.take("a", block=0.2) is None
    assert 0.15 < time.monotonic() - started < 1.0


@pytest_twisted.ensureDeferred
async def test_two_consumers_get_each_entry_once(redis: Redis, other: Redis) -> None:
    one, two = BuildQueue(redis, lease_timeout=60), BuildQueue(other, lease_timeout=60)
    await one.ensure_group()
    # Both wait; one entry arrives: exactly one of them gets it.
    waiting = [one.take("node-1", block=0.5), two.take("node-2", block=0.5)]
    await sleep(0.05)
    await one.add("only")
    got = [entry for entry in await defer.gatherResults(waiting) if entry is not None]
    assert [entry.image_key for entry in got] == ["only"]
    # Many entries, two takers in turn: every entry once, none twice.
    for number in range(20):
        await one.add(f"k{number}")
    seen: list[str] = []
    while True:
        pair = await defer.gatherResults([one.take("node-1", block=0.05), two.take("node-2", block=0.05)])
        found = [entry for entry in pair if entry is not None]
        if not found:
            break
        seen += [entry.image_key for entry in found]
    assert sorted(seen) == sorted(f"k{number}" for number in range(20))


@pytest_twisted.ensureDeferred
async def test_dead_consumers_entry_is_claimed_after_the_lease(redis: Redis, other: Redis) -> None:
    live, dead = BuildQueue(redis, lease_timeout=LEASE), BuildQueue(other, lease_timeout=LEASE)
    await live.add("k")
    taken = await dead.take("dead-node", block=0.1)
    assert taken is not None and taken.deliveries == 1
    assert await live.take("live-node", block=0.05) is None  # the lease still holds
    await sleep(LEASE + 0.1)
    claimed = await live.take("live-node", block=0.05)
    assert claimed == QueueEntry(taken.id, "k", "live-node", 2)
    assert await dead.renew(taken) is False  # the dead daemon, back, has lost it
    await sleep(LEASE + 0.1)
    again = await dead.take("dead-node", block=0)
    assert again is not None and again.deliveries == 3  # the pool fails it past max_attempts
    assert await live.deliveries(taken.id) == 3


@pytest_twisted.ensureDeferred
async def test_renewing_keeps_the_lease(redis: Redis, other: Redis) -> None:
    owner, thief = BuildQueue(redis, lease_timeout=LEASE), BuildQueue(other, lease_timeout=LEASE)
    await owner.add("k")
    entry = await owner.take("owner", block=0.1)
    assert entry is not None
    for _ in range(5):
        await sleep(LEASE / 3)
        assert await owner.renew(entry) is True
        assert await thief.take("thief", block=0) is None
    assert await thief.renew(QueueEntry(entry.id, "k", "thief")) is False  # renewing never steals
    await owner.ack(entry)
    assert await owner.renew(entry) is False


@pytest_twisted.ensureDeferred
async def test_flushed_redis_and_redis_down(redis: Redis, redis_server: RedisProcess) -> None:
    queue = BuildQueue(redis, lease_timeout=LEASE)
    await queue.add("k")
    assert (await queue.take("a", block=0)) is not None
    await redis.call("FLUSHALL")
    assert await queue.pending() == 0
    await redis.call("XADD", QUEUE_KEY, "*", "image_key", "after-flush")
    entry = await queue.take("a", block=0.1)  # NOGROUP: the group is made again
    assert entry is not None and entry.image_key == "after-flush"
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await queue.take("a", block=0.2)
    assert time.monotonic() - started < 1.0


@pytest_twisted.ensureDeferred
async def test_a_waiting_take_can_be_cancelled(redis: Redis) -> None:
    queue = BuildQueue(redis, lease_timeout=LEASE)
    await queue.ensure_group()
    waiting = queue.take("a", block=5)
    await sleep(0.1)
    waiting.cancel()  # a stopping pool
    with pytest.raises(defer.CancelledError):
        await waiting
    # (An entry added while the server still serves the dropped read could go to it, and would then wait
    # for the lease like any entry of a stopped daemon.)
    await sleep(0.2)
    started = time.monotonic()
    await queue.add("k")
    entry = await queue.take("a", block=1)
    assert entry is not None and entry.image_key == "k"
    assert time.monotonic() - started < 1.0  # not stuck behind the cancelled read
