"""Per-client limit on build POSTs: who a client is, and how many builds it may ask for per minute.

A client is its **network address** (``ip:<IPv4>`` or ``ip:<IPv6 /64>``) as uvicorn reports it, i.e. after
``X-Forwarded-For`` from a trusted proxy (uvicorn's ``--forwarded-allow-ips``). Not the ``client`` field or
the User-Agent: those are chosen by the sender (one host could rotate them to escape any limit) and shared by
every router of a kind (every LuCI says ``luci/<version>``), so a limit by name would throttle strangers
together. The same identity bounds the builds one client may have queued at once (``BuildService``).

Only accepted POSTs count: a refused POST (429) does not extend the wait, because LuCI re-POSTs every 5 s
while it has no 202 and would otherwise never get through. With a ``redis://`` queue the counters live in
Redis, so the limit holds across every API process; otherwise each process counts for itself.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Protocol

from starlette.requests import Request

from asud.errors import RateLimited
from sysup.api.state import state_of

__all__ = [
    "MemoryRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "client_identity",
    "create_rate_limiter",
    "limit_build_rate",
]

log = logging.getLogger(__name__)

#: The window of ``rate_limit_per_minute``.
WINDOW_SECONDS = 60
#: Clients remembered by the in-process limiter (the oldest are forgotten beyond this).
MEMORY_MAX_CLIENTS = 100_000


def client_identity(request: Request) -> str:
    """``ip:<address>`` of the client; IPv6 addresses are grouped by /64 (one site, one client)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64] or 'unknown'}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


class RateLimiter(Protocol):
    def hit(self, identity: str) -> int | None:
        """Count one request of ``identity``; ``None`` if allowed, else the seconds until it would be."""


class MemoryRateLimiter:
    """A sliding window per client in this process (single API process, or a per-process bound)."""

    def __init__(self, per_minute: int, *, max_clients: int = MEMORY_MAX_CLIENTS) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, identity: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(identity, deque())
            self._hits.move_to_end(identity)
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(1, int(hits[0] + WINDOW_SECONDS - now + 0.999))
            hits.append(now)
            while len(self._hits) > self.max_clients:
                self._hits.popitem(last=False)
        return None


class RedisRateLimiter:
    """A fixed one-minute window per client in Redis, shared by every API process.

    If Redis cannot be reached the request is allowed (the queue bounds still hold): a Redis restart must
    not turn into refused builds.
    """

    def __init__(self, url: str, per_minute: int, *, prefix: str = "sysup:rate:") -> None:
        import redis

        self.per_minute = per_minute
        self.prefix = prefix
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def hit(self, identity: str) -> int | None:
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        key = f"{self.prefix}{identity}:{window}"
        try:
            count = int(self._redis.get(key) or 0)
            if count >= self.per_minute:
                return max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 2 * WINDOW_SECONDS)
            pipe.execute()
        except Exception as error:  # redis.RedisError, OSError: fail open
            log.warning("rate limiter: Redis unavailable (%s); request allowed", error)
        return None


def create_rate_limiter(per_minute: int, queue_url: str | None) -> RateLimiter | None:
    """The limiter for the settings: ``None`` when disabled (``per_minute <= 0``)."""
    if per_minute <= 0:
        return None
    if queue_url and queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisRateLimiter(queue_url, per_minute)
    return MemoryRateLimiter(per_minute)


_create_lock = threading.Lock()


def limit_build_rate(request: Request) -> str:
    """FastAPI dependency of the build POST routes: the client's identity, or ``RateLimited`` (429).

    Synchronous on purpose (FastAPI runs it in the thread pool): the Redis round trip must not block the
    event loop. The limiter is made on first use and kept on ``app.state``.
    """
    identity = client_identity(request)
    app_state = request.app.state
    limiter = getattr(app_state, "rate_limiter", False)
    if limiter is False:
        with _create_lock:
            limiter = getattr(app_state, "rate_limiter", False)
            if limiter is False:
                settings = state_of(request).settings
                limiter = create_rate_limiter(settings.rate_limit_per_minute, settings.queue_url)
                app_state.rate_limiter = limiter
    if limiter is not None:
        wait = limiter.hit(identity)
        if wait is not None:
            raise RateLimited(
                f"too many build requests from this client; retry in {wait} s", retry_after=wait
            )
    return identity
