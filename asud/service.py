"""The daemon as one Twisted service tree: ``makeService(config) -> AsudService``.

The twistd plugin (``asud.tap``) and any program that embeds asud use this and nothing else. Everything is
constructed here without touching the network, so a host can mount :attr:`AsudService.resource` in its own
``Site`` before the service starts. Starting runs the parts in order, each waiting for the one before it:

0. under systemd (``$NOTIFY_SOCKET`` set), ``asud.systemd.SystemdNotify``: status lines as the others
   start, ``READY=1`` once all have, watchdog pings; it stops last;
1. the embedded ``redis-server`` when ``[redis] url`` is empty;
2. the clean-up part (starts the statistics' flush timer; on stop it writes the statistics still in memory
   and closes Redis and the fetcher);
3. the re-index of finished builds from the files store into Redis;
4. the catalog (first load from the download servers, then a refresh loop);
5. housekeeping (periodic pruning of indexes, the files store and the caches);
6. the build pool (takes work from the shared queue; absent with ``[build] workers = 0``);
7. the HTTP listeners of ``[http] listen`` (none when embedded).

Stopping first tells the stop observers (``STOPPING=1``; new build requests answered 503 with
``Retry-After``), then runs the parts backwards, one after the other, except that the HTTP listeners stop
right after the build pool: running builds handed back to the queue while the API still answers (status
polls as usual, build POSTs 503), then no new connections and the open ones closed once their answers are
out, housekeeping and the catalog loop stopped, statistics flushed, Redis closed, the embedded server
stopped. ``stopService`` returns a Deferred that fires when all of that is done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Site

from asud.config import Config

log = Logger()

#: Seconds a stopping daemon lets requests already being answered finish before it cuts their connections.
CLOSE_GRACE = 5.0

__all__ = ["AsudService", "HttpListeners", "ResourceCleanup", "makeService"]


class HttpListeners(Service):
    """Listens on each endpoint string with one ``Site``; ``ports`` are the listening ports once started."""

    name = "http"

    def __init__(self, reactor: Any, endpoints: Sequence[str], site: Site, *,
                 close_grace: float = CLOSE_GRACE) -> None:
        self._reactor = reactor
        self._endpoints = list(endpoints)
        self.site = site
        self.close_grace = close_grace
        self.ports: list[IListeningPort] = []

    @inlineCallbacks
    def start(self) -> Any:
        """Listen on every endpoint; fails (and closes what was opened) if one cannot be used."""
        try:
            for description in self._endpoints:
                endpoint = serverFromString(self._reactor, description)
                port = yield endpoint.listen(self.site)
                self.ports.append(port)
                log.info("asud listening on {description} ({address})", description=description,
                         address=port.getHost())
        except Exception:
            yield self.stopService()
            raise

    @inlineCallbacks
    def stopService(self) -> Any:
        Service.stopService(self)
        ports, self.ports = self.ports, []
        for port in ports:
            yield maybeDeferred(port.stopListening)
        closing = getattr(self.site, "close_connections", None)
        if closing is not None:
            # A request being answered gets its answer (a build POST: 503), then its connection closes.
            yield closing(grace=self.close_grace, clock=self._reactor)


class ResourceCleanup(Service):
    """Starts the statistics' flush timer; on stop writes every statistic still counted in memory, then
    closes the Redis connections and the fetcher.

    It is added right after the embedded Redis, so it stops after every part that uses them.
    """

    name = "cleanup"

    def __init__(self, *, stats: Any, redis: Any, fetcher: Any) -> None:
        self._stats = stats
        self._redis = redis
        self._fetcher = fetcher

    def startService(self) -> None:
        Service.startService(self)
        self._stats.start()

    @inlineCallbacks
    def stopService(self) -> Any:
        Service.stopService(self)
        for what, close in (("statistics", self._stats.stop), ("Redis", self._redis.disconnect),
                            ("fetcher", self._fetcher.close)):
            try:
                yield close()
            except Exception:
                log.failure("closing {what}", what=what)


class AsudService(MultiService):
    """The whole daemon. ``resource`` is its HTTP surface; ``started`` fires once it serves."""

    def __init__(self, config: Config, reactor: Any) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.resource: IResource
        #: What the HTTP surfaces share (``asud.http.state.AsudApp``), set by the assembly.
        self.app: Any = None
        #: Fires when every part has started (errback: the part that failed).
        self.started: Deferred[None] = Deferred()
        self._phases: list[IService] = []
        self._stop_order: list[IService] = []
        #: Called with a part's name as it starts (``asud.systemd``: ``STATUS=`` lines).
        self.phase_observers: list[Callable[[str], None]] = []
        #: Called once as stopping begins, before any part stops (``STOPPING=1``; new build requests 503).
        self.stop_observers: list[Callable[[], None]] = []

    def add_phase(self, service: IService, *, stops_after: IService | None = None) -> None:
        """Add a part that starts after (and stops before) the ones added earlier; ``stops_after`` moves
        its stop to right after that part's (the HTTP listeners keep answering while the pool stops)."""
        self._phases.append(service)
        if stops_after is not None and stops_after in self._stop_order:
            self._stop_order.insert(self._stop_order.index(stops_after) + 1, service)
        else:
            self._stop_order.insert(0, service)
        service.setServiceParent(self)

    def startService(self) -> None:
        # Not MultiService.startService: the parts start one after another, each waiting for the one before.
        Service.startService(self)
        self._run_start().chainDeferred(self.started)

    @inlineCallbacks
    def _run_start(self) -> Any:
        try:
            for phase in self._phases:
                self._tell(self.phase_observers, str(getattr(phase, "name", None) or type(phase).__name__))
                starter = getattr(phase, "start", None)
                if starter is not None:
                    Service.startService(phase)  # type: ignore[arg-type]
                    yield starter()
                else:
                    phase.startService()
                ready = getattr(phase, "ready", None)
                if isinstance(ready, Deferred):
                    yield ready
        except BaseException:
            log.failure("asud could not start; stopping what had started")
            yield self._stop_phases()
            raise
        log.info("asud started")

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        self._tell(self.stop_observers)
        return self._stop_phases()

    @staticmethod
    def _tell(observers: Sequence[Callable[..., None]], *args: Any) -> None:
        for observer in observers:
            try:
                observer(*args)
            except Exception:
                log.failure("service observer {observer} failed", observer=observer)

    @inlineCallbacks
    def _stop_phases(self) -> Any:
        for phase in list(self._stop_order):
            if not phase.running:
                continue
            try:
                yield maybeDeferred(phase.stopService)
            except Exception:
                log.failure("stopping {phase}", phase=getattr(phase, "name", phase))
        log.info("asud stopped")


def makeService(config: Config, reactor: IReactorCore | None = None) -> AsudService:
    """The daemon for ``config`` as one ``MultiService`` (see the module docstring for the order)."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor  # type: ignore[assignment]
    from asud.assembly import assemble

    return assemble(AsudService(config, reactor))
