"""Answered upgrade checks in Redis, so ``GET /api/upgrade-check/{hash}`` works from any daemon.

One answer per request hash; a repeated check replaces it (a new release changes the answer). Keys:

* ``asud:upgrade-checks`` — hash: request hash → JSON ``{"distro", "version", "target", "answer",
  "checked_at"}``; ``answer`` is :meth:`UpgradeCheck.to_json` or ``null`` for "up to date";
* ``asud:upgrade-checks:time`` — sorted set: request hash by ``checked_at`` (for :meth:`prune`);
* ``asud:upgrade-checks:names`` — sorted set, every score 0: request hashes in lexical order, so the
  12/15-character prefixes that 2017 clients kept are found with ``ZRANGEBYLEX``.

A save and a prune are Lua scripts, so the three keys never disagree.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from asud.store.redis import Redis, Script
from asud.upgrades.check import UpgradeCheck
from asud.upgrades.request import UpgradeCheckRequest

__all__ = ["ANSWERS_KEY", "MIN_PREFIX", "StoredCheck", "UpgradeCheckStore"]

ANSWERS_KEY = "asud:upgrade-checks"
TIME_KEY = "asud:upgrade-checks:time"
NAMES_KEY = "asud:upgrade-checks:names"

#: Shortest hash prefix looked up (the 2017 server issued 12 and 15 characters).
MIN_PREFIX = 12
_HEX = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},64}}")

_SAVE = Script("""
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return 1
""")

_PRUNE = Script("""
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
for i = 1, #old, 500 do
  local batch = {unpack(old, i, math.min(i + 499, #old))}
  redis.call('HDEL', KEYS[1], unpack(batch))
  redis.call('ZREM', KEYS[2], unpack(batch))
  redis.call('ZREM', KEYS[3], unpack(batch))
end
return #old
""")


@attrs.frozen
class StoredCheck:
    request_hash: str
    #: ``None``: the device was up to date.
    check: UpgradeCheck | None
    checked_at: datetime


class UpgradeCheckStore:
    """Save and find answered upgrade checks (full hash, or an unambiguous prefix of 12+ characters)."""

    def __init__(self, redis: Redis, *, clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self._redis = redis
        self._clock: IReactorTime = clock  # type: ignore[assignment]

    def save(self, request: UpgradeCheckRequest, check: UpgradeCheck | None) -> defer.Deferred[None]:
        """Store (or replace) the answer to ``request`` (``check`` ``None``: up to date)."""
        now = self._clock.seconds()
        document = {
            "distro": request.distro,
            "version": request.version,
            "target": request.target,
            "answer": check.to_json() if check is not None else None,
            "checked_at": now,
        }
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        keys = (ANSWERS_KEY, TIME_KEY, NAMES_KEY)
        d = self._redis.script(_SAVE, keys, (request.request_hash, text, repr(now)))
        return d.addCallback(lambda _: None)

    def load(self, request_hash: str) -> defer.Deferred[StoredCheck | None]:
        """The stored answer for a full hash or an unambiguous prefix of at least ``MIN_PREFIX`` hex
        characters (any case); ``None`` when unknown, ambiguous or not a hash."""
        return defer.ensureDeferred(self._load(request_hash.strip().lower()))

    async def _load(self, wanted: str) -> StoredCheck | None:
        if not _HEX.fullmatch(wanted):
            return None
        full = wanted
        if len(wanted) < 64:
            # Hex digits sort before "g", so "[prefix" … "(prefix" + "g" is every hash with that prefix.
            found = await self._redis.call(
                "ZRANGEBYLEX", NAMES_KEY, f"[{wanted}", f"({wanted}g", "LIMIT", 0, 2)
            if len(found) != 1:
                return None
            full = found[0]
        text = await self._redis.call("HGET", ANSWERS_KEY, full)
        if text is None:
            return None
        document: dict[str, Any] = json.loads(text)
        answer = document.get("answer")
        return StoredCheck(
            request_hash=full,
            check=UpgradeCheck.from_json(answer) if answer is not None else None,
            checked_at=datetime.fromtimestamp(float(document["checked_at"]), UTC),
        )

    def prune(self, older_than: float) -> defer.Deferred[int]:
        """Forget answers checked more than ``older_than`` seconds ago; fires with how many."""
        cutoff = self._clock.seconds() - older_than
        d = self._redis.script(_PRUNE, (ANSWERS_KEY, TIME_KEY, NAMES_KEY), (repr(cutoff),))
        return d.addCallback(int)
