"""The build queue: one Redis stream (``asud:queue``) read by one consumer group (``builders``).

DESIGN.md decisions 3 and 5. Every daemon of a cluster is a consumer of the group, named by its node. An
entry carries one field, ``image_key``; the build record (``asud.store.records``) is the truth about the
build, and it remembers the id of the entry that currently stands for it, so an old duplicate entry is
recognised and dropped.

Life of an entry:

* ``BuildRecords.submit`` adds it (``XADD``) in the same Lua script that creates the queued build, so a
  build is never queued without an entry, nor an entry added for a build that lost the race;
* :meth:`BuildQueue.take` hands it to one consumer: first an entry some consumer has held longer than the
  lease without renewing it (``XAUTOCLAIM`` — a dead daemon's builds go to a live one), else the next new
  one (``XREADGROUP … BLOCK`` on the dedicated blocking connection). Each delivery counts; the pool fails
  a build whose entry was delivered more than ``[build] max_attempts`` times (it crashed a daemon each
  time) instead of running it again;
* :meth:`BuildQueue.renew` keeps a running build's entry young (``XCLAIM … JUSTID`` by its owner only),
  every ``[build] lease_renew_interval``;
* :meth:`BuildQueue.ack` acknowledges and deletes it when the build is finished (or handed back: the
  record then adds a fresh entry), so the stream holds only work not yet done.

A ``take`` cancelled while it waits (a stopping pool) drops the blocking connection. If an entry arrived
in that very moment the server may already have delivered it to the dropped read; it then waits for the
lease like the entries of a daemon that died, and another ``take`` claims it.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer

from asud.store.redis import Redis, RedisReplyError, Script

__all__ = ["GROUP", "QUEUE_KEY", "BuildQueue", "QueueEntry"]

QUEUE_KEY = "asud:queue"
GROUP = "builders"

_ACK = Script("""
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
""")

#: Reset the idle time of an entry, but only for the consumer that holds it (never steal it back).
_RENEW = Script("""
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #held == 0 or held[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
""")


@attrs.frozen
class QueueEntry:
    """One delivered entry: which build, who holds it, and how often it was delivered (1 = first time)."""

    id: str
    image_key: str
    consumer: str
    deliveries: int = 1


class BuildQueue:
    """Add, take, renew and acknowledge build entries; ``lease_timeout`` is ``[build] lease_timeout``."""

    def __init__(self, redis: Redis, *, lease_timeout: float, key: str = QUEUE_KEY,
                 group: str = GROUP) -> None:
        self.redis = redis
        self.lease_timeout = lease_timeout
        self.key = key
        self.group = group

    @defer.inlineCallbacks
    def ensure_group(self) -> Any:
        """Create the stream and the group if missing (from id 0: entries added before are delivered)."""
        try:
            yield self.redis.call("XGROUP", "CREATE", self.key, self.group, "0", "MKSTREAM")
        except RedisReplyError as error:
            if not str(error).startswith("BUSYGROUP"):
                raise

    def add(self, image_key: str) -> defer.Deferred[str]:
        """Append an entry for ``image_key``; its id. (Submitting a build adds its entry itself.)"""
        return self.redis.call("XADD", self.key, "*", "image_key", image_key)

    @defer.inlineCallbacks
    def take(self, consumer: str, *, block: float) -> Any:
        """The next entry for ``consumer`` (a lapsed lease first, else a new entry, waiting up to
        ``block`` seconds), or ``None``."""
        for attempt in (1, 2):
            try:
                entry = yield self._claim_lapsed(consumer)
                if entry is None:
                    entry = yield self._read_new(consumer, block)
                return entry
            except RedisReplyError as error:
                # A flushed or new Redis has no group: make it and try once more.
                if attempt == 2 or not str(error).startswith("NOGROUP"):
                    raise
                yield self.ensure_group()
        return None

    @defer.inlineCallbacks
    def _claim_lapsed(self, consumer: str) -> Any:
        lease_ms = max(1, int(self.lease_timeout * 1000))
        cursor = "0-0"
        while True:
            reply = yield self.redis.call("XAUTOCLAIM", self.key, self.group, consumer, lease_ms, cursor,
                                          "COUNT", 1)
            cursor, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if not fields:
                    continue  # deleted meanwhile
                image_key = _field(fields, "image_key")
                if image_key is None:
                    yield self._drop(entry_id)
                    continue
                deliveries = yield self.deliveries(entry_id)
                return QueueEntry(entry_id, image_key, consumer, max(1, deliveries))
            if cursor == "0-0":
                return None

    @defer.inlineCallbacks
    def _read_new(self, consumer: str, block: float) -> Any:
        args: list[str | int] = ["XREADGROUP", "GROUP", self.group, consumer, "COUNT", 1]
        if block > 0:
            args += ["BLOCK", max(1, int(block * 1000))]
            reply = yield self.redis.blocking_call(*args, "STREAMS", self.key, ">", wait=block)
        else:
            reply = yield self.redis.call(*args, "STREAMS", self.key, ">")
        if not reply:
            return None
        for entry_id, fields in reply[0][1]:
            image_key = _field(fields or [], "image_key")
            if image_key is None:
                yield self._drop(entry_id)
                continue
            return QueueEntry(entry_id, image_key, consumer, 1)
        return None

    def deliveries(self, entry_id: str) -> defer.Deferred[int]:
        """How often the group delivered ``entry_id`` (0 when it is not pending)."""
        d = self.redis.call("XPENDING", self.key, self.group, entry_id, entry_id, 1)
        return d.addCallback(lambda rows: int(rows[0][3]) if rows else 0)

    def ack(self, entry: QueueEntry) -> defer.Deferred[None]:
        """The build of ``entry`` is finished (or handed back): forget the entry."""
        return self._drop(entry.id)

    def _drop(self, entry_id: str) -> defer.Deferred[None]:
        d = self.redis.script(_ACK, [self.key], [self.group, entry_id])
        return d.addCallback(lambda _: None)

    def renew(self, entry: QueueEntry) -> defer.Deferred[bool]:
        """Keep the lease of a running build; ``False`` when another consumer has claimed the entry."""
        d = self.redis.script(_RENEW, [self.key], [self.group, entry.id, entry.consumer])
        return d.addCallback(lambda renewed: bool(renewed))

    @defer.inlineCallbacks
    def pending(self) -> Any:
        """Entries delivered and not yet acknowledged: builds running, or left by a dead daemon."""
        try:
            summary = yield self.redis.call("XPENDING", self.key, self.group)
        except RedisReplyError as error:
            if str(error).startswith("NOGROUP"):
                return 0
            raise
        return int(summary[0])

    def length(self) -> defer.Deferred[int]:
        """Entries in the stream: waiting or pending (acknowledged ones are deleted)."""
        return self.redis.call("XLEN", self.key).addCallback(int)


def _field(fields: list[str], name: str) -> str | None:
    for index in range(0, len(fields) - 1, 2):
        if fields[index] == name:
            return fields[index + 1]
    return None
