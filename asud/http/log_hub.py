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
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.store.logstream import LogEntry, parse_entries, read_entries, stream_id
from asud.store.redis import Redis

__all__ = ["LogHub", "Subscription", "hub_for"]

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

    def __init__(self, redis: Redis, make_reader: Callable[[], Redis], *, block: float = BLOCK,
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
            entries = await read_entries(self.redis, stream, subscription.last, COUNT)
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
            self._wake()
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
                    self._cursors[stream] = entries[-1].id
                    for subscription in list(self._subscribers.get(stream, ())):
                        try:
                            subscription._take(entries)
                        except Exception:
                            log.failure("log follower failed; dropped")
                            self.unsubscribe(subscription)
        finally:
            self._loop = None
            reader.disconnect().addErrback(lambda _: None)


async def _nothing() -> None:
    return None


_HUBS: weakref.WeakKeyDictionary[Any, LogHub] = weakref.WeakKeyDictionary()


def hub_for(state: Any) -> LogHub:
    """The one hub of an ``AsudApp`` (made on first use, its reader on ``state.redis``' server)."""
    hub = _HUBS.get(state)
    if hub is None:
        redis: Redis = state.redis

        def make_reader() -> Redis:
            return Redis(redis.address, timeout=redis.timeout, poolsize=1)

        hub = LogHub(redis, make_reader, clock=state.clock)
        _HUBS[state] = hub
    return hub
