"""Periodic pruning, so a long-running daemon stays inside its disk and memory bounds.

Every ``[cache] housekeeping_interval`` seconds: the 2017 API's hash indexes lose entries of expired
builds, the files store drops least recently used results beyond ``[cache] store_max_bytes`` (never one
still served or being built), stored upgrade checks older than the statistics retention go, and the
ImageBuilder, package and upstream (catalog) caches shrink to their bounds. Each step runs on its own: one
that fails is logged and the others still run. Disk walks run in the reactor's thread pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from asud.config import Config

log = Logger()

__all__ = ["DEFAULT_INTERVAL", "Housekeeping"]

#: Seconds between two rounds.
DEFAULT_INTERVAL = 600.0
#: Stored upgrade checks are kept at least a day, even with a shorter statistics retention.
MIN_CHECK_KEEP = 86400.0


class Housekeeping(Service):
    """Runs :meth:`run_once` every ``interval`` seconds while the daemon runs."""

    name = "housekeeping"

    def __init__(self, config: Config, *, records: Any, files: Any, upgrade_checks: Any = None,
                 imagebuilders: Any = None, packages: Any = None, upstream: Any = None,
                 clock: IReactorTime | None = None, interval: float = DEFAULT_INTERVAL) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.config = config
        self.records = records
        self.files = files
        self.upgrade_checks = upgrade_checks
        self.imagebuilders = imagebuilders
        self.packages = packages
        #: The ``Fetcher`` whose on-disk cache is bounded (``prune_cache``).
        self.upstream = upstream
        self.interval = interval
        self._clock = clock
        self._loop: LoopingCall | None = None
        self._round: Deferred[None] | None = None

    def startService(self) -> None:
        Service.startService(self)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=False)

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        running, self._round = self._round, None
        if running is not None:
            running.cancel()
        return succeed(None)

    def _tick(self) -> None:
        if self._round is None:
            self._round = self.run_once()
            self._round.addBoth(self._finished)

    def _finished(self, result: object) -> None:
        self._round = None

    def run_once(self) -> Deferred[None]:
        """One round of every step; fires when all have run (never fails)."""
        return ensureDeferred(self._run())

    async def _run(self) -> None:
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("hash indexes", self._prune_indexes),
            ("files store", self._prune_store),
        ]
        if self.upgrade_checks is not None:
            steps.append(("upgrade checks", self._prune_checks))
        if self.imagebuilders is not None:
            steps.append(("ImageBuilder cache", self._evict_imagebuilders))
        if self.packages is not None:
            steps.append(("package cache", self._prune_packages))
        if self.upstream is not None:
            steps.append(("upstream cache", self._prune_upstream))
        for what, step in steps:
            try:
                await step()
            except Exception:
                log.failure("housekeeping: pruning the {what} failed", what=what)

    async def _prune_indexes(self) -> None:
        await self.records.prune_indexes()

    async def _prune_store(self) -> None:
        keep = await self.records.live_bin_dirs()
        removed = await deferToThread(self.files.prune, self.config.cache.store_max_bytes, set(keep))
        if removed:
            log.info("housekeeping: removed {count} stored results", count=len(removed))

    async def _prune_checks(self) -> None:
        await self.upgrade_checks.prune(max(self.config.retention.stats, MIN_CHECK_KEEP))

    async def _evict_imagebuilders(self) -> None:
        await self.imagebuilders.evict()

    async def _prune_packages(self) -> None:
        await self.packages.prune(self.config.cache.package_max_bytes)

    async def _prune_upstream(self) -> None:
        removed = await self.upstream.prune_cache(self.config.cache.upstream_max_bytes)
        if removed:
            log.info("housekeeping: removed {count} entries of the upstream cache", count=removed)
