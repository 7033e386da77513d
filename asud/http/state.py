"""What the HTTP surfaces share for the daemon's lifetime: :class:`AsudApp`.

``asud.service.makeService`` builds one from the daemon's parts and hands it to
``asud.http.root.make_resource``; each surface takes it in ``__init__`` and reads what it needs. Parts a
surface cannot work without but that are not there (a test app without Redis, a catalog still loading)
answer 503 through :class:`~asud.errors.Unavailable`, never an ``AttributeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.interfaces import IReactorTime

from asud.config import Config
from asud.errors import Unavailable
from asud.http.hot_cache import HotCache
from asud.store.files import Store

if TYPE_CHECKING:
    from asud.build.queue import BuildQueue
    from asud.catalog import Catalog, CatalogService
    from asud.store.records import BuildRecords
    from asud.store.redis import Redis

__all__ = [
    "DOCUMENT_CACHE_ENTRIES",
    "DOCUMENT_CACHE_SECONDS",
    "FINISHED_CACHE_ENTRIES",
    "FINISHED_CACHE_SECONDS",
    "AsudApp",
    "RequestObserver",
]

#: Finished build answers kept in process (count) and for how long (seconds). Short, because a result can
#: expire or be purged by another daemon; a POST always asks the records and drops the entry if not done.
FINISHED_CACHE_ENTRIES = 4096
FINISHED_CACHE_SECONDS = 30.0
#: Overview/branches/latest, revisions and per-profile documents: how many and for how long (seconds).
DOCUMENT_CACHE_ENTRIES = 2048
DOCUMENT_CACHE_SECONDS = 10.0

#: Called once per finished request: ``(method, route template, status, seconds)`` (``/metrics``).
RequestObserver = Callable[[str, str, int, float], None]


def _global_reactor() -> IReactorTime:
    from twisted.internet import reactor

    return reactor  # type: ignore[return-value]


@attrs.define(eq=False)
class AsudApp:
    """The daemon's parts as the HTTP surfaces see them."""

    config: Config
    files: Store
    #: Time for the hot caches and rate windows (a ``Clock`` in tests).
    clock: IReactorTime = attrs.field(factory=_global_reactor)
    #: ``asud.catalog.CatalogService`` (or anything with a ``catalog`` attribute that is ``None`` until
    #: the first load finished).
    catalog: CatalogService | Any = None
    records: BuildRecords | None = None
    queue: BuildQueue | None = None
    redis: Redis | None = None
    #: ``asud.store.stats.StatsRecorder``
    stats: Any = None
    #: ``asud.store.stats_queries``' query object
    stats_queries: Any = None
    #: ``asud.store.rate_limit``'s limiter (``None``: no limit)
    rate_limits: Any = None
    #: stored upgrade checks (``asud.upgrades``)
    upgrade_checks: Any = None
    #: ``asud.build.validate.RequestLimits`` for the v1 build POST (made from ``config`` when absent).
    limits: Any = None
    #: ``asud.build.imagebuilders.ImageBuilderCache`` of this daemon's pool (``/metrics`` reads its size);
    #: ``None`` on a daemon that builds nothing.
    imagebuilders: Any = None
    observers: list[RequestObserver] = attrs.field(factory=list)
    #: Set when the daemon starts stopping (SIGTERM): build requests are answered 503 with ``Retry-After``.
    stopping: bool = False
    finished: HotCache[str, Any] = attrs.field(init=False)
    documents: HotCache[tuple[str, ...], bytes] = attrs.field(init=False)
    #: POST bodies (without ``client``) answered 200 → ``asud.http.build.Accepted``; with ``finished`` this
    #: answers a repeated POST of a built image without validating it again.
    accepted: HotCache[str, Any] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.finished = HotCache(FINISHED_CACHE_ENTRIES, FINISHED_CACHE_SECONDS, self.clock)
        self.documents = HotCache(DOCUMENT_CACHE_ENTRIES, DOCUMENT_CACHE_SECONDS, self.clock)
        self.accepted = HotCache(FINISHED_CACHE_ENTRIES, FINISHED_CACHE_SECONDS, self.clock)

    def refuse_builds(self) -> None:
        """From now on new build requests are answered 503 (``AsudService.stop_observers`` calls this)."""
        self.stopping = True

    # -- parts that may be missing ---------------------------------------------------------------------
    def current_catalog(self) -> Catalog:
        """The loaded catalog; 503 while the first load is still running."""
        catalog = getattr(self.catalog, "catalog", None)
        if catalog is None:
            raise Unavailable("The catalog is still loading, retry in a few seconds")
        return catalog  # type: ignore[no-any-return]

    def build_records(self) -> BuildRecords:
        if self.records is None:
            raise Unavailable("Build records are not available, retry later")
        return self.records

    @property
    def default_distro(self) -> str:
        return self.config.default_distro
