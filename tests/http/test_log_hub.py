"""The log hub's own reads on a real ``redis-server``: a backlog as one JSON reply (``read_log``), the
blocking reader's connection (``LogReader``) with replies split anywhere, and a hub whose followers of one
stream share one read."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError
from twisted.internet.testing import StringTransport

from asud.http.log_hub import LogHub, LogReader, _Resp, read_log
from asud.store.logstream import LogEntry, RedisLogSink, log_key, read_entries
from asud.store.redis import Redis, RedisReplyError
from tests.build.support import eventually, sleep
from tests.store.support import TIMEOUT, redis
from tests.support.redis import RedisProcess

__all__ = ["redis"]


@pytest_twisted.ensureDeferred
async def test_read_log_is_the_stream_after_an_id_in_order(redis: Redis) -> None:
    assert await read_log(redis, log_key("none")) == []  # no stream: an empty list, not an error
    sink = RedisLogSink(redis)
    sink.begin("k", "node")
    for number in range(1500):
        sink.line("k", "make image", f"line {number} — ünïcode \"quoted\" \\ / tab\t")
    sink.end("k", None)
    await sink.flushed("k")
    whole = await read_entries(redis, log_key("k"), count=5000)
    assert await read_log(redis, log_key("k"), count=5000) == whole  # as XRANGE reads it, field for field
    after = await read_log(redis, log_key("k"), whole[10].id, count=3)
    assert after == whole[11:14]
    assert await read_log(redis, log_key("k"), whole[-1].id) == []


def _fed_bytewise(data: bytes, commands: int) -> list[Any]:
    protocol = _Resp()
    protocol.makeConnection(StringTransport())
    results: list[Any] = []
    for _ in range(commands):
        protocol.send("X").addCallbacks(results.append, lambda failure: results.append(failure.value))
    for index in range(len(data)):
        protocol.dataReceived(data[index : index + 1])
    return results


def test_replies_split_anywhere_are_parsed_whole() -> None:
    data = (
        b"*2\r\n*2\r\n$5\r\n1-0\r\n\r\n*2\r\n$4\r\ntext\r\n$5\r\n\xc3\xbc \r\n\r\n*-1\r\n"
        b"+OK\r\n:42\r\n$-1\r\n-ERR wrong\r\n"
    )
    first, ok, number, null, error = _fed_bytewise(data, 5)
    assert first == [["1-0\r\n", ["text", "ü \r\n"]], None]
    assert (ok, number, null) == ("OK", 42, None)
    assert isinstance(error, RedisReplyError) and str(error) == "ERR wrong"


@pytest_twisted.ensureDeferred
async def test_the_reader_blocks_reads_and_reconnects_after_giving_up(redis: Redis) -> None:
    reader = LogReader(redis.address, timeout=TIMEOUT)
    try:
        await redis.call("XADD", "s", "1-1", "kind", "line", "text", "hello")
        reply = await reader.blocking_call("XREAD", "BLOCK", 1000, "STREAMS", "s", "0-0", wait=1.0)
        assert reply == [["s", [["1-1", ["kind", "line", "text", "hello"]]]]]
        with pytest.raises(RedisReplyError):
            await reader.blocking_call("XREAD", "STREAMS", "s", wait=1.0)  # a wrong command: the server says
        for pause in (0.0, 0.2):  # given up while connecting, and while the read blocks
            waiting = reader.blocking_call("XREAD", "BLOCK", 5000, "STREAMS", "s", "$", wait=5.0)
            await sleep(pause)
            waiting.cancel()  # a stopping hub gives up its read: the connection goes with it
            with pytest.raises(CancelledError):
                await waiting
        reply = await reader.blocking_call("XREAD", "STREAMS", "s", "0-0", wait=1.0)
        assert reply[0][1][0][0] == "1-1"
    finally:
        await reader.disconnect()


@pytest_twisted.ensureDeferred
async def test_followers_of_one_stream_share_each_read_and_get_everything_once(redis: Redis) -> None:
    hub = LogHub(redis, lambda: LogReader(redis.address, timeout=TIMEOUT), block=1.0, clock=reactor)
    sink = RedisLogSink(redis)
    got: dict[int, list[LogEntry]] = {number: [] for number in range(30)}
    batches: dict[int, list[list[LogEntry]]] = {number: [] for number in range(30)}

    def deliver(number: int) -> Any:
        def take(entries: list[LogEntry]) -> None:
            got[number].extend(entries)
            batches[number].append(entries)

        return take

    try:
        sink.line("k", "make image", "before anyone follows")
        await sink.flushed("k")
        subscriptions = [
            hub.subscribe(log_key("k"), "0-0", deliver(number), lambda failure: None) for number in range(30)
        ]
        await eventually(lambda: hub.subscribers(log_key("k")) == 30)
        for number in range(200):
            sink.line("k", "make image", f"line {number}")
        sink.end("k", None)
        await sink.flushed("k")
        await eventually(lambda: all(entries and entries[-1].kind == "end" for entries in got.values()))
        whole = await read_entries(redis, log_key("k"), count=1000)
        assert all(entries == whole for entries in got.values())  # all of it, once, in order
        # Once all follow, each live read is one list handed to every follower (nothing copied per follower).
        live = batches[0][-1]
        assert all(any(batch is live for batch in batches[number]) for number in range(30))
        for subscription in subscriptions:
            subscription.close()
        await eventually(lambda: not hub.reading)
    finally:
        await hub.close()


@pytest_twisted.ensureDeferred
async def test_the_hub_reads_on_after_redis_restarts(redis_server: RedisProcess, redis: Redis) -> None:
    hub = LogHub(redis, lambda: LogReader(redis.address, timeout=TIMEOUT), block=0.5, clock=reactor)
    sink = RedisLogSink(redis)
    got: list[LogEntry] = []
    subscription = hub.subscribe(log_key("k"), "0-0", got.extend, lambda failure: None)
    try:
        await eventually(lambda: hub.subscribers(log_key("k")) == 1)
        sink.line("k", "make image", "before")
        await sink.flushed("k")
        await eventually(lambda: [entry.text for entry in got] == ["before"])
        redis_server.restart()  # an empty server (no persistence): the stream is gone, ids go on
        # Lines written while the pool reconnects are dropped (and logged): write until one lands.
        for _ in range(100):
            sink.line("k", "make image", "after")
            await sink.flushed("k")
            if any(entry.text == "after" for entry in got):
                break
            await sleep(0.1)
        assert [entry.text for entry in got][:2] == ["before", "after"]
    finally:
        subscription.close()
        await hub.close()
