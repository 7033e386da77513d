"""``asud purge HASH``: drop the cached result (e.g. a failure) of a request hash so the next request builds
it again.

With ``[redis] url`` empty the daemon runs its own ``redis-server`` under ``data_dir``: when the daemon is
running, this command talks to that server; when it is not, it starts the server on the same data for as
long as the purge takes.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asud.config import Config
from asud.scripts.command import Command

__all__ = ["PurgeOptions", "redis_for"]


@asynccontextmanager
async def redis_for(reactor: Any, config: Config) -> AsyncIterator[Any]:
    """A connected :class:`asud.store.redis.Redis` for ``config`` (the embedded server started if needed)."""
    from asud.store.embedded import EmbeddedRedis
    from asud.store.redis import Redis

    embedded = None
    url = config.redis.url
    if not url:
        embedded = EmbeddedRedis.from_config(config, reactor=reactor)
        url = embedded.url
        probe = Redis.from_url(url, timeout=config.redis.timeout) if embedded.socket_path.exists() else None
        try:
            running = probe is not None and await probe.ping()
        except Exception:
            running = False
        finally:
            if probe is not None:
                await probe.disconnect()
        if running:
            embedded = None  # the daemon's server: leave it alone
        else:
            await embedded.start()
    redis = Redis.from_url(url, timeout=config.redis.timeout)
    try:
        yield redis
    finally:
        await redis.disconnect()
        if embedded is not None:
            await embedded.stopService()


class PurgeOptions(Command):
    """``asud purge HASH``."""

    synopsis = "[--config FILE] HASH"
    longdesc = "Expire the cached result (e.g. a failure) of request hash HASH; the next request rebuilds it."

    def parseArgs(self, request_hash: str) -> None:
        self["hash"] = request_hash

    async def run(self, reactor: Any) -> int:
        from asud.store.records import BuildRecords

        config = self.load_config()
        async with redis_for(reactor, config) as redis:
            records = BuildRecords.from_config(redis, config, clock=reactor)
            purged = await records.purge(self["hash"])
        if purged:
            print(f"purged {self['hash']}")
            return 0
        print(f"nothing to purge for {self['hash']}", file=sys.stderr)
        return 1
