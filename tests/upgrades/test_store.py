"""Stored upgrade-check answers in a real redis-server: full hash, 12/15-character prefixes, replacement,
pruning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from asud.errors import Unavailable
from asud.store.redis import Redis
from asud.upgrades.check import UpgradeCheck
from asud.upgrades.request import UpgradeCheckRequest
from asud.upgrades.store import ANSWERS_KEY, NAMES_KEY, TIME_KEY, UpgradeCheckStore
from tests.support.redis import RedisProcess

CHECK = UpgradeCheck(
    version="24.10.5", version_code="r29087-d9c5716d1d", upgrades={"curl": ("2", "1")}, packages=["curl"]
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest_twisted.async_yield_fixture
async def redis(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, timeout=5.0)
    try:
        yield client
    finally:
        await client.disconnect()


def store_at(redis: Redis, moment: datetime = NOW) -> tuple[UpgradeCheckStore, Clock]:
    clock = Clock()
    clock.advance(moment.timestamp())
    return UpgradeCheckStore(redis, clock=clock), clock


def request(version: str = "24.10.4") -> UpgradeCheckRequest:
    return UpgradeCheckRequest(distro="openwrt", version=version, target="x86/64", packages={"curl": "1"})


@pytest_twisted.ensureDeferred
async def test_full_hash_and_prefixes(redis: Redis) -> None:
    store, _ = store_at(redis)
    asked = request()
    await store.save(asked, CHECK)
    full = asked.request_hash
    for key in (full, full[:12], full[:15], full.upper()):
        stored = await store.load(key)
        assert stored is not None, key
        assert stored.request_hash == asked.request_hash
        assert stored.check == CHECK
        assert stored.checked_at == NOW
    assert await store.load(asked.request_hash[:11]) is None  # too short to be one of ours
    assert await store.load("0" * 64) is None
    assert await store.load("not-a-hash-at-all") is None


@pytest_twisted.ensureDeferred
async def test_up_to_date_is_stored_too(redis: Redis) -> None:
    store, _ = store_at(redis)
    asked = request("25.12.1")
    await store.save(asked, None)
    stored = await store.load(asked.request_hash)
    assert stored is not None and stored.check is None


@pytest_twisted.ensureDeferred
async def test_a_new_answer_replaces_the_old(redis: Redis) -> None:
    store, clock = store_at(redis)
    asked = request()
    await store.save(asked, None)
    clock.advance(60)
    await store.save(asked, CHECK)
    stored = await store.load(asked.request_hash)
    assert stored is not None and stored.check == CHECK
    assert stored.checked_at.timestamp() == NOW.timestamp() + 60
    assert await redis.call("HLEN", ANSWERS_KEY) == 1


@pytest_twisted.ensureDeferred
async def test_ambiguous_prefix_is_not_found(redis: Redis) -> None:
    # Two real requests sharing 12 hex characters are astronomically unlikely: write the entries directly.
    store, _ = store_at(redis)
    document = '{"distro":"openwrt","version":"1","target":"x/y","answer":null,"checked_at":1767225600}'
    for suffix in ("a" * 52, "b" * 52):
        name = "0123456789ab" + suffix
        await redis.call("HSET", ANSWERS_KEY, name, document)
        await redis.call("ZADD", TIME_KEY, 1767225600, name)
        await redis.call("ZADD", NAMES_KEY, 0, name)
    assert await store.load("0123456789ab") is None
    assert await store.load("0123456789aba") is not None


@pytest_twisted.ensureDeferred
async def test_prune(redis: Redis) -> None:
    store, _ = store_at(redis)
    await store.save(request(), CHECK)
    assert await store.prune(86400.0) == 0
    assert await store.prune(-1.0) == 1
    assert await store.load(request().request_hash) is None
    assert await store.load(request().request_hash[:12]) is None
    for key in (ANSWERS_KEY, TIME_KEY, NAMES_KEY):
        assert await redis.call("EXISTS", key) == 0


@pytest_twisted.ensureDeferred
async def test_prune_many(redis: Redis) -> None:
    store, clock = store_at(redis)
    for index in range(1200):
        await store.save(request(f"24.10.{index}"), None)
    clock.advance(3600)
    await store.save(request("25.12.1"), None)
    assert await store.prune(1800.0) == 1200
    assert await store.load(request("25.12.1").request_hash) is not None


@pytest_twisted.ensureDeferred
async def test_redis_down_is_unavailable(redis_server: RedisProcess) -> None:
    client = Redis.from_url(redis_server.url, timeout=0.3)
    try:
        store, _ = store_at(client)
        await store.save(request(), CHECK)
        redis_server.stop()
        for call in (store.load(request().request_hash), store.save(request(), None), store.prune(0)):
            with pytest.raises(Unavailable):
                await call
    finally:
        await client.disconnect()
