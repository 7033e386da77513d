"""One reader of the live log streams per daemon, fanned out to every follower.

500 browsers following one build cost one Redis read, not 500: each :class:`Subscription` first reads
what it missed with ``XRANGE`` on the shared pool (its backlog, from the id it asks for), then joins the
hub, whose single loop reads every followed stream with one ``XREAD … BLOCK`` on a connection of its own
and hands each new entry to each subscriber of that stream. A subscriber never sees an entry twice or
misses one: ids only go up, each subscriber keeps the last id it got, and it joins only once its backlog
reaches the hub's cursor for that stream (otherwise it reads the gap first).

The hub's connection exists only while someone follows: the loop starts with the first subscription and
ends (closing its connection) as soon as the last subscriber leaves. A new stream wakes a blocked read by
adding to the hub's private wake stream. ``unsubscribe`` is immediate and touches nothing but the hub's
tables — a follower that leaves never affects the build or the others.

Replies are parsed whole. txredisapi hands each bulk string of a reply to the next reactor turn (with an
epoll change and a timer each), so one ``XREAD`` of 100 lines took 1,000 turns while 500 followers
waited: the hub's blocking read runs on a :class:`LogReader` of its own (a plain RESP connection that
parses a reply in one pass), and backlogs are read with :func:`read_log`, a script that returns the range
as one JSON string. The hub wakes its blocked read only for a stream it does not read yet, and hands
every subscriber of a stream the same list of entries (the followers share what they write).
"""

from __future__ import annotations

import json
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint, connectProtocol
from twisted.internet.error import ConnectingCancelledError, ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.store.logstream import LogEntry, parse_entries, stream_id
from asud.store.redis import Redis, RedisAddress, RedisReplyError, Script

__all__ = ["LogHub", "LogReader", "Subscription", "hub_for", "read_log"]

log = Logger()

#: Seconds one blocking read waits before the loop looks again at who follows what.
BLOCK = 5.0
#: Entries read per stream per round.
COUNT = 1000


class Subscription:
    """One follower of one stream; ``deliver(entries)`` gets every entry after ``last``, in order, once;
    ``failed(failure)`` when its backlog could not be read (Redis away)."""

    def __init__(self, hub: LogHub, stream: str, last: str, deliver: Callable[[list[LogEntry]], None],
                 failed: Callable[[Failure], None]) -> None:
        self.hub = hub
        self.stream = stream
        self.last = last
        self.deliver = deliver
        self.failed = failed
        self.closed = False
        self.attached = False

    def close(self) -> None:
        self.hub.unsubscribe(self)

    def _take(self, entries: list[LogEntry]) -> None:
        last = stream_id(self.last)
        fresh = [entry for entry in entries if stream_id(entry.id) > last]
        if fresh:
            self.last = fresh[-1].id
            self.deliver(fresh)


class LogHub:
    """See the module docstring. ``make_reader()`` opens the loop's own connection."""

    def __init__(self, redis: Redis, make_reader: Callable[[], LogReader], *, block: float = BLOCK,
                 clock: Any = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.redis = redis
        self.make_reader = make_reader
        self.block = block
        self.clock = clock
        self._subscribers: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, str] = {}
        self._loop: Deferred[None] | None = None
        #: The streams of the blocking read under way.
        self._reading: frozenset[str] = frozenset()
        self._wake_key = f"asud:logwake:{uuid.uuid4().hex}"
        self._closed = False

    # -- followers ------------------------------------------------------------------------------------
    def subscribe(self, stream: str, after: str, deliver: Callable[[list[LogEntry]], None],
                  failed: Callable[[Failure], None]) -> Subscription:
        """Follow ``stream`` from after the id ``after`` (``"0-0"``: from its start)."""
        subscription = Subscription(self, stream, after, deliver, failed)
        Deferred.fromCoroutine(self._catch_up(subscription)).addErrback(
            lambda failure: None if subscription.closed else subscription.failed(failure))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        followers = self._subscribers.get(subscription.stream)
        if followers is not None:
            followers.discard(subscription)
            if not followers:
                del self._subscribers[subscription.stream]
                self._cursors.pop(subscription.stream, None)
                if not self._cursors and self._loop is not None:
                    # Nobody left: end the blocked read now (its connection and timer go with it), but
                    # not from inside the loop's own delivery.
                    self.clock.callLater(0, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        if not self._cursors and self._loop is not None:
            self._loop.cancel()

    def subscribers(self, stream: str | None = None) -> int:
        """How many follow ``stream`` (or anything)."""
        if stream is not None:
            return len(self._subscribers.get(stream, ()))
        return sum(len(followers) for followers in self._subscribers.values())

    @property
    def reading(self) -> bool:
        """Whether the loop (and its connection) is up."""
        return self._loop is not None

    def close(self) -> Deferred[None]:
        """Stop the loop (a stopping daemon, a test's end)."""
        self._closed = True
        loop = self._loop
        if loop is None:
            return Deferred.fromCoroutine(_nothing())
        done: Deferred[None] = Deferred()
        loop.addBoth(lambda _: done.callback(None))
        loop.cancel()
        return done

    async def _catch_up(self, subscription: Subscription) -> None:
        stream = subscription.stream
        while not subscription.closed:
            entries = await read_log(self.redis, stream, subscription.last, COUNT)
            if subscription.closed:
                return
            if entries:
                subscription._take(entries)
                if len(entries) == COUNT:
                    continue
            cursor = self._cursors.get(stream)
            if cursor is not None and stream_id(cursor) > stream_id(subscription.last):
                continue  # the hub read past our backlog meanwhile: read the gap first
            if subscription.closed:
                return
            if cursor is None:
                self._cursors[stream] = subscription.last
            self._subscribers.setdefault(stream, set()).add(subscription)
            subscription.attached = True
            if self._loop is None or stream not in self._reading:
                self._wake()  # a read already under way for this stream brings its entries anyway
            return

    # -- the loop -------------------------------------------------------------------------------------
    def _wake(self) -> None:
        if self._closed:
            return
        if self._loop is None:
            loop = Deferred.fromCoroutine(self._read_loop())
            loop.addErrback(lambda failure: failure.trap(CancelledError) and None)
            if not loop.called:
                self._loop = loop
            return
        d = self.redis.call("XADD", self._wake_key, "MAXLEN", "1", "*", "w", "1")
        d.addCallback(lambda _: self.redis.call("EXPIRE", self._wake_key, 60))
        d.addErrback(lambda failure: log.warn("log hub: wake failed: {error}",
                                              error=failure.getErrorMessage()))

    async def _read_loop(self) -> None:
        reader = self.make_reader()
        try:
            while self._cursors and not self._closed:
                streams = list(self._cursors)
                ids = [self._cursors[stream] for stream in streams]
                self._reading = frozenset(streams)
                try:
                    reply = await reader.blocking_call(
                        "XREAD", "COUNT", COUNT, "BLOCK", int(self.block * 1000), "STREAMS",
                        *streams, self._wake_key, *ids, "$", wait=self.block)
                except CancelledError:
                    raise
                except Exception as error:
                    log.warn("log hub: reading the log streams failed ({error}); retrying", error=error)
                    await deferLater(self.clock, 1.0, lambda: None)
                    continue
                for stream, raw in reply or []:
                    if stream not in self._cursors:
                        continue
                    entries = parse_entries(raw)
                    if not entries:
                        continue
                    previous, last = self._cursors[stream], entries[-1].id
                    self._cursors[stream] = last
                    for subscription in list(self._subscribers.get(stream, ())):
                        try:
                            if subscription.last == previous:
                                # Where the hub was: all of it is new to this one (the usual case).
                                subscription.last = last
                                subscription.deliver(entries)
                            else:
                                subscription._take(entries)
                        except Exception:
                            log.failure("log follower failed; dropped")
                            self.unsubscribe(subscription)
        finally:
            self._loop = None
            self._reading = frozenset()
            reader.disconnect().addErrback(lambda _: None)


async def _nothing() -> None:
    return None


#: KEYS: a stream. ARGV: start (``-`` or ``(<id>``), count. The range as one JSON string: a reply of one
#: bulk string costs txredisapi one turn, where the nested lists of ``XRANGE`` cost one per field.
_RANGE = Script("""
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
if #entries == 0 then return '[]' end
return cjson.encode(entries)
""")


def read_log(redis: Redis, stream: str, after: str = "0-0", count: int = COUNT) -> Deferred[list[LogEntry]]:
    """Entries of ``stream`` after the id ``after`` (exclusive), at most ``count`` (``XRANGE``'s answer,
    read through a script that returns it as JSON)."""
    start = f"({after}" if after != "0-0" else "-"
    d = redis.script(_RANGE, [stream], [start, count])
    return d.addCallback(lambda text: parse_entries(json.loads(text)))


class _Incomplete(Exception):
    """The buffer ends before the reply does."""


def _parse(buffer: bytes, at: int) -> tuple[Any, int]:
    """One RESP2 reply starting at ``at``: the reply (an error reply as a ``RedisReplyError``; strings
    decoded as UTF-8) and where the next one starts; ``_Incomplete`` if it has not all arrived."""
    end = buffer.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete
    kind, head = buffer[at : at + 1], buffer[at + 1 : end]
    if kind == b"$":
        size = int(head)
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buffer) < stop + 2:
            raise _Incomplete
        return buffer[end + 2 : stop].decode("utf-8", "replace"), stop + 2
    if kind == b"*":
        count = int(head)
        if count < 0:
            return None, end + 2
        items = []
        at = end + 2
        for _ in range(count):
            item, at = _parse(buffer, at)
            items.append(item)
        return items, at
    if kind == b"+":
        return head.decode(), end + 2
    if kind == b":":
        return int(head), end + 2
    if kind == b"-":
        return RedisReplyError(head.decode("utf-8", "replace")), end + 2
    raise ValueError(f"not a RESP reply: {buffer[at:at + 40]!r}")


def _command(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Resp(Protocol):
    """Commands in, whole replies out, in order; everything waiting fails when the connection goes."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiting: deque[Deferred[Any]] = deque()
        self.gone = False

    def send(self, *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.waiting.append(d)
        self.transport.write(_command(args))  # type: ignore[union-attr]
        return d

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while self.waiting and self.buffer:
            try:
                reply, used = _parse(self.buffer, 0)
            except _Incomplete:
                return
            self.buffer = self.buffer[used:]
            d = self.waiting.popleft()
            if d.called:
                continue  # given up on (cancelled)
            if isinstance(reply, RedisReplyError):
                d.errback(reply)
            else:
                d.callback(reply)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.gone = True
        while self.waiting:
            d = self.waiting.popleft()
            if not d.called:
                d.errback(reason or Failure(ConnectionLost()))


class LogReader:
    """The hub's own connection to Redis for its blocking ``XREAD`` (see the module docstring): one
    command at a time, each bounded by ``wait + timeout`` seconds; a failed or abandoned command drops
    the connection (its reply would still come), the next one reconnects."""

    def __init__(self, address: RedisAddress, *, timeout: float, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default
        self.address = address
        self.timeout = timeout
        self.reactor = reactor
        self._protocol: _Resp | None = None

    async def _connected(self) -> _Resp:
        if self._protocol is not None and not self._protocol.gone:
            return self._protocol
        address = self.address
        endpoint: Any
        if address.path:
            endpoint = UNIXClientEndpoint(self.reactor, address.path, timeout=max(1, int(self.timeout)))
        else:
            endpoint = HostnameEndpoint(self.reactor, address.host, address.port, timeout=self.timeout)
        try:
            protocol = await connectProtocol(endpoint, _Resp())
        except ConnectingCancelledError as error:
            raise CancelledError() from error  # given up while connecting: to the caller, as any cancel
        self._protocol = protocol
        hello: list[tuple[Any, ...]] = []
        if address.password is not None:
            hello.append(("AUTH", address.username, address.password) if address.username
                         else ("AUTH", address.password))
        if address.db:
            hello.append(("SELECT", address.db))
        for command in hello:
            await self._bounded(protocol, command, self.timeout)
        return protocol

    async def _bounded(self, protocol: _Resp, command: tuple[Any, ...], seconds: float) -> Any:
        d = protocol.send(*command)
        d.addTimeout(seconds, self.reactor)
        try:
            return await d
        except BaseException:
            self.disconnect()
            raise

    def blocking_call(self, *args: Any, wait: float) -> Deferred[Any]:
        """``args`` (a command that may block ``wait`` seconds); its reply."""

        async def call() -> Any:
            protocol = await self._connected()
            return await self._bounded(protocol, args, wait + self.timeout)

        return Deferred.fromCoroutine(call())

    def disconnect(self) -> Deferred[None]:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None and not protocol.gone:
            protocol.transport.abortConnection()  # type: ignore[attr-defined]
        return Deferred.fromCoroutine(_nothing())


_HUBS: weakref.WeakKeyDictionary[Any, LogHub] = weakref.WeakKeyDictionary()


def hub_for(state: Any) -> LogHub:
    """The one hub of an ``AsudApp`` (made on first use, its reader on ``state.redis``' server)."""
    hub = _HUBS.get(state)
    if hub is None:
        redis: Redis = state.redis

        def make_reader() -> LogReader:
            return LogReader(redis.address, timeout=redis.timeout)

        hub = LogHub(redis, make_reader, clock=state.clock)
        _HUBS[state] = hub
    return hub
