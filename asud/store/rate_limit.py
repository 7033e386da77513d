"""Per-client limit on build POSTs: how many builds one client may ask for per minute.

Who a client is (its network address, ``ip:<IPv4>`` or ``ip:<IPv6 /64>``) is decided by the HTTP side,
``asud.http.rate_limit.client_identity``, which calls :meth:`RateLimiter.hit` and answers 429.

Only accepted POSTs count: a refused POST (429) does not extend the wait, because LuCI re-POSTs every 5 s
while it has no 202 and would otherwise never get through. The counters live in Redis (a fixed one-minute
window per client), so the limit holds across every daemon of a cluster. If Redis cannot be reached the
request is allowed (the queue bounds still hold): a Redis restart must not turn into refused builds.
"""

from __future__ import annotations

import math
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from asud.errors import Unavailable
from asud.store.redis import Redis, Script

__all__ = ["WINDOW_SECONDS", "RateLimiter", "create_rate_limiter"]

log = Logger()

#: The window of ``[requests] rate_limit_per_minute``.
WINDOW_SECONDS = 60

#: KEYS: the client's counter of this window. ARGV: limit, expiry. Returns the count before this hit
#: when refused, else -1 (and the hit is counted).
_HIT = Script("""
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return count end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return -1
""")


class RateLimiter:
    """A fixed one-minute window per client in Redis, shared by every daemon."""

    def __init__(self, redis: Redis, per_minute: int, *, prefix: str = "asud:rate:",
                 clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.redis = redis
        self.per_minute = per_minute
        self.prefix = prefix
        self._clock: IReactorTime = clock  # type: ignore[assignment]

    @defer.inlineCallbacks
    def hit(self, identity: str) -> Any:
        """Count one request of ``identity``: ``None`` if allowed, else the seconds until it would be."""
        now = self._clock.seconds()
        window = int(now // WINDOW_SECONDS)
        key = f"{self.prefix}{identity}:{window}"
        try:
            count = yield self.redis.script(_HIT, [key], [self.per_minute, 2 * WINDOW_SECONDS])
        except Unavailable as error:
            log.warn("rate limiter: {detail}; request allowed", detail=error.detail)
            return None
        if count < 0:
            return None
        return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def create_rate_limiter(per_minute: int, redis: Redis, *,
                        clock: IReactorTime | None = None) -> RateLimiter | None:
    """The limiter for ``[requests] rate_limit_per_minute``; ``None`` when disabled (``0``)."""
    if per_minute <= 0:
        return None
    return RateLimiter(redis, per_minute, clock=clock)
