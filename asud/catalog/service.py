"""The catalog as a service: the first load at start, then a refresh every ``catalog.refresh_interval``.

Each refresh reads the download servers with conditional requests (``load_catalog`` with the current
catalog as ``previous``) and swaps the new catalog in with one assignment: a request sees the old
generation or the new one, never half of each. A refresh that finds nothing new keeps the same catalog
object (same ``generation``), so answer caches keyed on the generation stay warm.

What a load found is written to the log: every line of its report at the first load and whenever a
refresh changed something or found a problem (``PROBLEM:`` lines as warnings, with their URLs).
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.catalog.catalog import Catalog
from asud.catalog.load import load_catalog
from asud.catalog.report import SyncReport
from asud.config import Config
from asud.upstream.fetch import Fetcher

__all__ = ["CatalogService"]

log = Logger()


class CatalogService(Service):
    """Holds the current ``catalog`` (``None`` until the first load finished) and keeps it fresh.

    ``start()`` (called by ``startService``, or by a parent that waits for it) does the first load and
    starts the refresh loop; ``ready`` fires with the catalog once the first load finished. The
    ``fetcher`` belongs to the caller (``stopService`` does not close it).
    """

    name = "catalog"

    def __init__(self, config: Config, fetcher: Fetcher, *, reactor: IReactorTime | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor  # type: ignore[assignment]
        self.config = config
        self.fetcher = fetcher
        self._reactor = reactor
        self.catalog: Catalog | None = None
        #: The report of the last load.
        self.report: SyncReport | None = None
        self._loop: LoopingCall | None = None
        self._loading: Deferred[SyncReport] | None = None
        self._waiting: list[Deferred[SyncReport]] = []
        self._ready: list[Deferred[Catalog]] = []

    @property
    def ready(self) -> Deferred[Catalog]:
        """Fires with the catalog once the first load finished (a new Deferred at every access)."""
        if self.catalog is not None:
            return succeed(self.catalog)
        waiter: Deferred[Catalog] = Deferred(lambda d: self._ready.remove(d) if d in self._ready else None)
        self._ready.append(waiter)
        return waiter

    def startService(self) -> None:
        Service.startService(self)
        self.start().addErrback(_log_failure, "first catalog load failed")

    def start(self) -> Deferred[Catalog]:
        """The first load (the refresh loop starts with it, when the service runs); fires with the
        catalog."""

        def loaded(_report: SyncReport) -> Catalog:
            assert self.catalog is not None
            return self.catalog

        def failed(failure: Failure) -> Failure:
            for waiter in self._take_ready():
                waiter.errback(failure)
            return failure

        return self.refresh().addCallbacks(loaded, failed)

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._loading is not None:
            self._loading.cancel()
        return succeed(None)

    def refresh(self) -> Deferred[SyncReport]:
        """Load now (or join the load already running); fires with its report."""
        waiter: Deferred[SyncReport] = Deferred(
            lambda d: self._waiting.remove(d) if d in self._waiting else None)
        self._waiting.append(waiter)
        if self._loading is None:
            self._loading = load_catalog(self.config, self.fetcher, previous=self.catalog)
            self._loading.addBoth(self._loaded)
        return waiter

    def _loaded(self, result: tuple[Catalog, SyncReport] | Failure) -> None:
        self._loading = None
        waiting, self._waiting = self._waiting, []
        if isinstance(result, Failure):
            for waiter in waiting:
                waiter.errback(result)
            return
        catalog, report = result
        first = self.catalog is None
        self.catalog, self.report = catalog, report
        self._log(report, first=first)
        if self.running and self._loop is None:
            self._loop = LoopingCall(self._refresh_quietly)
            self._loop.clock = self._reactor
            self._loop.start(self.config.catalog.refresh_interval, now=False)
        for ready in self._take_ready():
            ready.callback(catalog)
        for waiter in waiting:
            waiter.callback(report)

    def _take_ready(self) -> list[Deferred[Catalog]]:
        ready, self._ready = self._ready, []
        return ready

    def _refresh_quietly(self) -> Deferred[Any]:
        """One refresh of the loop; a failure is logged, never stops the loop."""
        return self.refresh().addErrback(_log_failure, "catalog refresh failed")

    def _log(self, report: SyncReport, *, first: bool) -> None:
        if not first and not report.changed and report.ok:
            log.info("catalog unchanged ({requests} requests, {not_modified} not modified)",
                     requests=report.requests, not_modified=report.not_modified)
            return
        generation = self.catalog.generation if self.catalog is not None else 0
        log.info("catalog generation {generation} loaded", generation=generation)
        for line in report.lines():
            if line.lstrip().startswith("PROBLEM:"):
                log.warn("catalog: {line}", line=line.strip())
            else:
                log.info("catalog: {line}", line=line.strip())


def _log_failure(failure: Failure, what: str) -> None:
    if not failure.check(CancelledError):  # a load cancelled by stopService is no failure
        log.failure(what, failure)
