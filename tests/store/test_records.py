"""Build records on a real ``redis-server``: dedupe, queue positions, TTLs, limits, purge, and the pool's
state changes guarded by the node (ported from tests/builds/test_service.py and test_queue.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from asud.build.queue import QUEUE_KEY, BuildQueue
from asud.build.stages import BuildStage, BuildStatus
from asud.errors import BuildError, Overloaded, RateLimited, Unavailable
from asud.store.records import MAX_OUTPUT_CHARS, BuildRecords, TTLs, clip_output
from asud.store.redis import Redis
from tests.store.support import TIMEOUT, redis, validated
from tests.support.redis import RedisProcess

__all__ = ["redis"]


async def stream_length(redis: Redis) -> int:
    return int(await redis.call("XLEN", QUEUE_KEY))


async def finish(records: BuildRecords, image_key: str, *, ok: bool, node: str = "w1") -> None:
    job = await records.started(image_key, node)
    assert job is not None
    assert await records.stage(image_key, BuildStage.BUILDING_IMAGE, node=node)
    if ok:
        assert await records.done(image_key, {"images": [], "id": "generic"}, job["bin_dir"], "out", "",
                                  node=node)
    else:
        assert await records.failed(image_key, BuildError("Error: boom", stderr="err"), node=node)


@pytest_twisted.ensureDeferred
async def test_hundred_concurrent_identical_posts_make_one_build(
    redis: Redis, redis_server: RedisProcess
) -> None:
    other = Redis.from_url(redis_server.url, timeout=TIMEOUT)  # a second daemon on the same Redis
    try:
        services = [BuildRecords(client, max_pending_jobs=1000, max_pending_per_client=1000)
                    for client in (redis, other)]
        request = validated()
        views = await defer.gatherResults(
            [services[number % 2].submit(request, client="luci/1") for number in range(100)])
    finally:
        await other.disconnect()
    assert await stream_length(redis) == 1
    assert await redis.call("KEYS", "asud:build:*") == [f"asud:build:{request.image_key}"]
    assert {view.request_hash for view in views} == {request.request_hash}
    assert all(view.status is BuildStatus.QUEUED and view.queue_position == 0 for view in views)


@pytest_twisted.ensureDeferred
async def test_queue_positions_and_views(redis: Redis) -> None:
    service = BuildRecords(redis)
    first = await service.submit(validated(packages=["a"]))
    second = await service.submit(validated(packages=["b"]))
    third = await service.submit(validated(packages=["c"]))
    assert (first.queue_position, second.queue_position, third.queue_position) == (0, 1, 2)
    assert second.detail == "queued" and second.imagebuilder_status == "queued"
    assert second.request["packages"] == ["b"] and second.request["client"] is None
    assert second.enqueued_at.tzinfo is not None and abs(second.enqueued_at.timestamp() - time.time()) < 5
    assert await service.queue_length() == 3
    assert await service.get("0" * 64) is None
    # The first one starts: the others move up.
    assert await service.started(first.image_key, "w1") is not None
    assert [(await service.get(view.request_hash)).queue_position  # type: ignore[union-attr]
            for view in (first, second, third)] == [None, 0, 1]
    assert await service.queue_length() == 2


@pytest_twisted.ensureDeferred
async def test_same_image_different_request_shares_build(redis: Redis) -> None:
    service = BuildRecords(redis)
    a = validated(client="luci/1")
    b = validated(client="ofs/2", defaults="")
    assert a.request_hash == b.request_hash  # empty defaults mean none
    await service.submit(a)
    await service.submit(b)
    assert await stream_length(redis) == 1


@pytest_twisted.ensureDeferred
async def test_started_done_and_cache_hit(redis: Redis) -> None:
    service = BuildRecords(redis)
    request = validated()
    await service.submit(request)
    job = await service.started(request.image_key, "w1")
    assert job == request.job()
    assert await service.stage(request.image_key, BuildStage.VALIDATE_MANIFEST, node="w1")
    started = await service.get(request.request_hash)
    assert started is not None and started.status is BuildStatus.STARTED
    assert started.queue_position is None and started.detail == "started"
    assert started.imagebuilder_status == "calculate_packages_hash"
    assert started.node == "w1" and started.attempts == 1
    record = await service.done(request.image_key, {"id": "generic"}, request.bin_dir, "", "", node="w1")
    assert record is not None and record.status is BuildStatus.DONE and record.expires_at is not None
    done = await service.submit(request)
    assert done.status is BuildStatus.DONE and done.result == {"id": "generic"}
    assert done.bin_dir == request.bin_dir and done.imagebuilder_status == "done"
    assert done.expires_at is not None and done.expires_at > done.enqueued_at
    assert await stream_length(redis) == 1
    assert request.bin_dir in await service.live_bin_dirs()
    # Finished records leave Redis some time after they expire.
    ttl = await redis.call("TTL", f"asud:build:{request.image_key}")
    assert TTLs().unversioned < ttl <= TTLs().unversioned + service.stale_keep


@pytest_twisted.ensureDeferred
async def test_expired_failure_is_rebuilt_once_and_purge(redis: Redis) -> None:
    service = BuildRecords(redis, ttls=TTLs(failure=0))
    request = validated()
    await service.submit(request)
    await finish(service, request.image_key, ok=False)
    failed = await service.get(request.request_hash)
    assert failed is not None and failed.status is BuildStatus.FAILED and failed.detail == "Error: boom"
    assert failed.error_kind == "BuildError" and failed.stderr == "err" and failed.bin_dir is None
    # Fifty concurrent requests for the stale result: one new build, one new entry.
    again = await defer.gatherResults([service.submit(request) for _ in range(50)])
    assert {view.status for view in again} == {BuildStatus.QUEUED}
    assert await stream_length(redis) == 2

    cached = BuildRecords(redis, ttls=TTLs(failure=3600))
    other = validated(packages=["htop"])
    await cached.submit(other)
    await finish(cached, other.image_key, ok=False)
    assert (await cached.submit(other)).status is BuildStatus.FAILED
    assert await cached.purge(other.request_hash) is True
    assert other.bin_dir not in await cached.live_bin_dirs()
    assert (await cached.submit(other)).status is BuildStatus.QUEUED
    assert await cached.purge(other.request_hash) is False  # queued: nothing to purge
    assert await cached.purge("f" * 64) is False


@pytest_twisted.ensureDeferred
async def test_overload_limits(redis: Redis, redis_server: RedisProcess) -> None:
    service = BuildRecords(redis, max_pending_jobs=2, max_pending_per_client=5)
    await service.submit(validated(packages=["a"]))
    await service.submit(validated(packages=["b"]))
    with pytest.raises(Overloaded) as info:
        await service.submit(validated(packages=["c"]))
    assert info.value.status_code == 529
    assert info.value.detail == "server overload, queue contains too many build requests: 2"
    # a request for an existing build is never refused
    assert (await service.submit(validated(packages=["a"]))).status is BuildStatus.QUEUED
    assert await stream_length(redis) == 2

    await redis.call("FLUSHALL")
    per_client = BuildRecords(redis, max_pending_per_client=1)
    first = await per_client.submit(validated(packages=["a"]), client="x")
    with pytest.raises(RateLimited) as limited:  # one client's bound: 429, not the server-wide 529
        await per_client.submit(validated(packages=["b"]), client="x")
    assert limited.value.status_code == 429 and limited.value.retry_after == 60
    assert limited.value.detail == "too many queued build requests from this client: 1"
    await per_client.submit(validated(packages=["b"]), client="y")
    # Once its build started, the client may queue another; the count is shared by every daemon.
    await per_client.started(first.image_key, "w1")
    await per_client.submit(validated(packages=["c"]), client="x")
    assert await redis.call("HGETALL", "asud:queued:clients") in (["y", "1", "x", "1"], ["x", "1", "y", "1"])


@pytest_twisted.ensureDeferred
async def test_private_store_kind_and_ttls(redis: Redis) -> None:
    service = BuildRecords(redis)
    request = validated(defaults="uci set system.@system[0].hostname=x")
    await service.submit(request)
    record = await service.record(request.image_key)
    assert record is not None
    assert record.store_kind == "private" and record.bin_dir == request.bin_dir and "-" in record.bin_dir
    assert record.result_ttl == int(TTLs().defaults) and record.failure_ttl == int(TTLs().failure)
    assert record.request_hash == request.request_hash and record.job == request.job()
    pinned = validated(packages_versions={"luci": "1.0"})
    await service.submit(pinned)
    assert (await service.record(pinned.image_key)).result_ttl == int(TTLs().versioned)  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_only_the_node_that_builds_writes(redis: Redis) -> None:
    service = BuildRecords(redis)
    request = validated()
    view = await service.submit(request)
    record = await service.record(request.image_key)
    assert record is not None and record.entry
    assert await service.started(request.image_key, "w1", "0-1") is None  # not its entry: a stale duplicate
    assert await service.started(request.image_key, "w1", record.entry) is not None
    assert await service.holds(request.image_key, "w1") and not await service.holds(request.image_key, "w2")
    assert not await service.stage(request.image_key, BuildStage.BUILDING_IMAGE, node="w2")
    assert await service.done(request.image_key, {}, "x", "", "", node="w2") is None
    assert await service.failed(request.image_key, BuildError("no"), node="w2") is None
    assert await service.requeue(request.image_key, node="w2") is None
    assert await service.done(request.image_key, {}, request.bin_dir, "", "", node="w1") is not None
    assert await service.started(request.image_key, "w3") is None  # done
    assert (await service.get(view.request_hash)).status is BuildStatus.DONE  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_handed_back_build_is_queued_at_its_old_place(redis: Redis) -> None:
    service = BuildRecords(redis)
    queue = BuildQueue(redis, lease_timeout=60)
    first, second = validated(packages=["a"]), validated(packages=["b"])
    await service.submit(first)
    await service.submit(second, client="other")
    entry = await queue.take("node-1", block=0)
    assert entry is not None and entry.image_key == first.image_key
    assert await service.started(first.image_key, "node-1", entry.id) is not None
    new_entry = await service.requeue(first.image_key, node="node-1")
    await queue.ack(entry)
    assert new_entry and new_entry != entry.id
    view = await service.get(first.request_hash)
    assert view is not None and view.status is BuildStatus.QUEUED and view.queue_position == 0
    assert await redis.call("HGET", "asud:queued:clients", "unknown/0") == "1"
    # The old entry is gone; the next daemon takes the other build, then the handed-back one.
    taken = [await queue.take("node-2", block=0), await queue.take("node-2", block=0)]
    assert [item.image_key for item in taken if item] == [second.image_key, first.image_key]
    assert await service.started(first.image_key, "node-2", entry.id) is None
    assert await service.started(first.image_key, "node-2", new_entry) is not None


@pytest_twisted.ensureDeferred
async def test_dead_daemons_build_is_taken_over_then_failed_after_max_attempts(redis: Redis) -> None:
    lease, max_attempts = 0.2, 2
    service, queue = BuildRecords(redis), BuildQueue(redis, lease_timeout=lease)
    request = validated()
    await service.submit(request)

    async def take(node: str) -> Any:
        entry = await queue.take(node, block=0)
        assert entry is not None
        if entry.deliveries > max_attempts:  # what the pool does
            await queue.ack(entry)
            return await service.give_up(entry.image_key, entry.deliveries - 1)
        return entry, await service.started(entry.image_key, node, entry.id)

    entry, job = await take("dead-1")
    assert job is not None and entry.deliveries == 1
    await task.deferLater(reactor, lease + 0.1, lambda: None)
    entry, job = await take("second")
    assert job is not None and entry.deliveries == 2
    # the dead daemon cannot write any more
    assert await service.done(request.image_key, {}, "x", "", "", node="dead-1") is None
    await task.deferLater(reactor, lease + 0.1, lambda: None)
    record = await take("third")
    assert record.status is BuildStatus.FAILED and record.error_kind == "BuildAbandoned"
    view = await service.get(request.request_hash)
    assert view is not None and view.status is BuildStatus.FAILED and "abandoned 2 times" in view.detail
    assert await queue.length() == 0 and await service.queue_length() == 0


@pytest_twisted.ensureDeferred
async def test_output_is_clipped_and_redis_down_is_unavailable(
    redis: Redis, redis_server: RedisProcess
) -> None:
    long = "a" * MAX_OUTPUT_CHARS + "the error at the end"
    clipped = clip_output(long)
    assert clipped.endswith("the error at the end") and "characters cut" in clipped
    assert clip_output("short") == "short"
    service = BuildRecords(redis)
    request = validated()
    await service.submit(request)
    await service.started(request.image_key, "w1")
    record = await service.failed(request.image_key, BuildError("Error: x", stdout=long), node="w1")
    assert record is not None and record.stdout == clipped

    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await service.submit(validated(packages=["x"]))
    with pytest.raises(Unavailable):
        await service.get(request.request_hash)
    assert time.monotonic() - started < 2 * TIMEOUT + 0.5


@pytest_twisted.ensureDeferred
async def test_hash_prefixes_for_the_2017_api(redis: Redis) -> None:
    service = BuildRecords(redis)
    built, waiting = validated(packages=["a"]), validated(packages=["b"])
    await service.submit(built)
    await service.submit(waiting)
    assert await service.find_request_hashes(built.request_hash[:12]) == [built.request_hash]
    assert await service.find_request_hashes(built.request_hash) == [built.request_hash]
    assert await service.find_request_hashes("f" * 12) == []
    assert await service.find_image_keys(built.image_key[:15]) == []  # not built yet
    await finish(service, built.image_key, ok=True)
    assert await service.find_image_keys(built.image_key[:15]) == [built.image_key]
    record = await service.build(built.image_key)
    assert record is not None and record.status is BuildStatus.DONE
    # Two hashes sharing the prefix: both found (the caller says "ambiguous").
    twin = "".join(reversed(built.request_hash))
    await redis.call("HSET", f"asud:request:{built.request_hash[:12]}{twin[12:]}", "image_key", "x")
    await redis.call("ZADD", "asud:index:requests", 0, f"{built.request_hash[:12]}{twin[12:]}")
    assert len(await service.find_request_hashes(built.request_hash[:12], limit=2)) == 2
    # Records Redis forgot leave the index on lookup, or in housekeeping.
    await redis.call("DEL", f"asud:request:{built.request_hash[:12]}{twin[12:]}",
                     f"asud:request:{waiting.request_hash}")
    assert await service.find_request_hashes(built.request_hash[:12]) == [built.request_hash]
    assert await service.prune_indexes() == 1
    assert await redis.call("ZCARD", "asud:index:requests") == 1
