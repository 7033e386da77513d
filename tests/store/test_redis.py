"""The Redis client on a real ``redis-server``: URLs, calls, scripts, and a clear 503 when it is down."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from asud.errors import Unavailable
from asud.store.redis import Redis, RedisAddress, RedisReplyError, Script, parse_url
from tests.store.support import TIMEOUT, redis
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable

__all__ = ["redis"]


def test_urls() -> None:
    assert parse_url("redis://cache.example:6380/2") == RedisAddress(host="cache.example", port=6380, db=2)
    assert parse_url("redis://localhost") == RedisAddress(host="localhost", port=6379, db=0)
    assert parse_url("redis://:secret@h/1") == RedisAddress(host="h", db=1, password="secret")
    assert parse_url("unix:///run/asud/redis.sock?db=3") == RedisAddress(path="/run/asud/redis.sock", db=3)
    assert parse_url("unix:///run/asud/redis.sock").db == 0
    assert "secret" not in parse_url("redis://:secret@h/1").describe()
    for bad in ("http://h/1", "unix://", "redis://h/x"):
        with pytest.raises(ValueError):
            parse_url(bad)


@pytest_twisted.ensureDeferred
async def test_calls_and_scripts(redis: Redis) -> None:
    assert await redis.ping() is True
    assert await redis.call("SET", "k", "1e3") == "OK"
    assert await redis.call("GET", "k") == "1e3"  # text stays text
    assert await redis.call("INCR", "n") == 1
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await redis.script(script, ["n"], [5]) == 6  # first run: EVALSHA fails, EVAL loads it
    assert await redis.script(script, ["n"], [1]) == 7
    with pytest.raises(RedisReplyError):
        await redis.call("INCR", "k")  # an error reply is not "unavailable"


@pytest_twisted.ensureDeferred
async def test_blocking_reads_do_not_stall_other_calls(redis: Redis) -> None:
    blocked = redis.blocking_call("BLPOP", "nothing", 1, wait=1.0)
    started = time.monotonic()
    for _ in range(10):
        assert await redis.call("PING") == "PONG"
    assert time.monotonic() - started < 0.5
    await redis.call("RPUSH", "nothing", "x")
    assert await blocked == ["nothing", "x"]
    # Two blocking reads take turns on the one connection.
    first = redis.blocking_call("BLPOP", "q", 1, wait=1.0)
    second = redis.blocking_call("BLPOP", "q", 1, wait=1.0)
    await redis.call("RPUSH", "q", "a", "b")
    assert [await first, await second] == [["q", "a"], ["q", "b"]]


@pytest_twisted.ensureDeferred
async def test_down_means_unavailable_within_a_second_and_back_after_restart(
    redis: Redis, redis_server: RedisProcess
) -> None:
    assert await redis.call("SET", "k", "v") == "OK"
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        await redis.call("GET", "k")
    assert time.monotonic() - started < 1.0
    assert info.value.detail.startswith("Redis ") and "retry later" in info.value.detail
    assert str(redis_server.socket_path) not in info.value.detail, "where Redis runs is not told to clients"
    assert info.value.status_code == 503
    with pytest.raises(Unavailable):
        await redis.blocking_call("BLPOP", "q", 1, wait=0.1)

    redis_server.start()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert await redis.call("SET", "k", "again") == "OK"
            break
        except Unavailable:
            assert time.monotonic() < deadline, "Redis was not used again after its restart"
            await task.deferLater(reactor, 0.1, lambda: None)
    assert await redis.call("GET", "k") == "again"
    assert await redis.blocking_call("BLPOP", "q", 1, wait=1.0) is None


@pytest_twisted.ensureDeferred
async def test_never_started_server_is_unavailable(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("none") / "redis.sock"
    client = Redis.from_url(f"unix://{path}", timeout=TIMEOUT)
    try:
        started = time.monotonic()
        results = await defer.DeferredList([client.call("PING") for _ in range(5)], consumeErrors=True)
        assert all(not ok and failure.check(Unavailable) for ok, failure in results)
        assert time.monotonic() - started < TIMEOUT + 0.5  # the connect timeout, not a hang
    finally:
        await client.disconnect()


@pytest_twisted.ensureDeferred
async def test_made_before_its_server_runs_and_closed(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("late")
    client = Redis.from_url(f"unix://{directory}/redis.sock", timeout=TIMEOUT)  # connects on first use
    server = RedisProcess(require_executable("redis-server", "redis-server"), directory)
    await task.deferLater(reactor, 0.3, lambda: None)
    server.start()
    try:
        assert await client.ping() is True  # no reconnect back-off to wait for
    finally:
        await client.disconnect()
        server.stop()
    with pytest.raises(Unavailable, match="is closed"):
        await client.call("PING")
