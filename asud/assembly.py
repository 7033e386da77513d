"""Builds the daemon's parts from its settings and hangs them on the service tree, in start order.

Only this module knows every part; each part only knows the ones it is given. ``asud.service`` owns the
tree's start/stop order; ``asud.housekeeping`` the periodic pruning.
"""

from __future__ import annotations

from typing import Any

from asud.build.pool import BuildPool
from asud.build.queue import BuildQueue
from asud.build.validate import RequestLimits
from asud.catalog.service import CatalogService
from asud.config import Config
from asud.housekeeping import Housekeeping
from asud.http.root import make_resource
from asud.http.site import make_site
from asud.http.state import AsudApp
from asud.service import AsudService, HttpListeners, ResourceCleanup
from asud.store.embedded import EmbeddedRedis
from asud.store.files import Store
from asud.store.rate_limit import create_rate_limiter
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from asud.store.reindex import ReindexService
from asud.store.stats import StatsRecorder
from asud.store.stats_queries import StatsQueries
from asud.systemd import SystemdNotify
from asud.upgrades.store import UpgradeCheckStore
from asud.upstream.fetch import Fetcher

__all__ = ["assemble"]


def assemble(service: AsudService) -> AsudService:
    """Fill ``service`` (made by ``makeService``) with the daemon's parts; sets ``service.resource``."""
    config: Config = service.config
    reactor: Any = service.reactor
    for directory in (config.data_dir, config.store_dir):
        directory.mkdir(parents=True, exist_ok=True)

    # Under a Type=notify unit ($NOTIFY_SOCKET): first to start, last to stop (watchdog pings throughout).
    notify = SystemdNotify.from_environment(reactor=reactor)
    if notify is not None:
        service.add_phase(notify)
        notify.watch(service)
    redis_url = config.redis.url
    if not redis_url:
        embedded = EmbeddedRedis.from_config(config, reactor=reactor)
        service.add_phase(embedded)
        redis_url = embedded.url
    redis = Redis.from_url(redis_url, timeout=config.redis.timeout, clock=reactor)
    files = Store(config.store_dir)
    fetcher = Fetcher(timeout=config.upstream.fetch_timeout, retries=config.upstream.fetch_retries,
                      max_concurrent=config.upstream.max_concurrent, cache_dir=config.upstream_cache_dir,
                      reactor=reactor)
    records = BuildRecords.from_config(redis, config, clock=reactor)
    queue = BuildQueue(redis, lease_timeout=config.build.lease_timeout)
    stats = StatsRecorder(redis, retention=config.retention.stats, clock=reactor)
    upgrade_checks = UpgradeCheckStore(redis, clock=reactor)
    catalog = CatalogService(config, fetcher, reactor=reactor)

    # Stopped after every part that uses them: statistics flushed, then Redis and the fetcher closed.
    service.add_phase(ResourceCleanup(stats=stats, redis=redis, fetcher=fetcher))
    service.add_phase(ReindexService(redis, files))
    service.add_phase(catalog)
    # A daemon with no workers builds nothing: no pool, so no sandbox is needed to serve the API.
    pool = None
    if config.build.workers > 0:
        pool = BuildPool(config, queue, records, files, fetcher, reactor=reactor, node=config.node_name(),
                         stats=stats)
    app = AsudApp(
        config=config,
        files=files,
        clock=reactor,
        catalog=catalog,
        records=records,
        queue=queue,
        redis=redis,
        stats=stats,
        stats_queries=StatsQueries(redis, retention=config.retention.stats, clock=reactor),
        rate_limits=create_rate_limiter(config.requests.rate_limit_per_minute, redis, clock=reactor),
        upgrade_checks=upgrade_checks,
        limits=RequestLimits.from_config(config),
        imagebuilders=pool.pipeline.imagebuilders if pool is not None else None,
    )
    service.app = app
    service.stop_observers.append(app.refuse_builds)
    service.add_phase(Housekeeping(
        config, records=records, files=files, upgrade_checks=upgrade_checks, clock=reactor,
        imagebuilders=pool.pipeline.imagebuilders if pool is not None else None,
        packages=pool.pipeline.packages if pool is not None else None,
        upstream=fetcher, interval=config.cache.housekeeping_interval,
    ))
    if pool is not None:
        service.add_phase(pool)
    if notify is not None:
        notify.pool, notify.records = pool, records
    service.resource = make_resource(app)
    if config.http.listen:
        site = make_site(service.resource, max_body_bytes=config.http.max_body_bytes,
                         access_log=config.http.access_log)
        # Stopped right after the pool: while builds are handed back, status polls are answered and build
        # requests get 503 + Retry-After instead of a refused connection.
        service.add_phase(HttpListeners(reactor, config.http.listen, site), stops_after=pool)
    return service
