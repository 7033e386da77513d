"""Wiring from ``Settings`` to the build machinery, for ``sysup worker``, ``sysup serve`` and the API.

This is the only module of ``sysup.builds`` that reads ``Settings``; it passes plain values down.
Imports of ``sysup.imagebuilders`` happen inside the functions so the API process, which only enqueues,
never loads the build tooling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from huey import Huey

from asud.store.files import Store
from sysup.builds import records
from sysup.builds.maintenance import housekeeping, refresh_catalog
from sysup.builds.models import utcnow
from sysup.builds.queue import BUILD_TASK, BuildQueue, LeaseReaper, create_huey, register_tasks
from sysup.builds.records import SessionFactory
from sysup.builds.service import BuildService
from sysup.builds.worker import PackageSource, WorkerContext, run_build
from sysup.config import Settings

#: A build abandoned this many times (worker died each time) is failed instead of re-queued.
MAX_BUILD_ATTEMPTS = 3
#: A queued build whose task may have been lost is enqueued again after waiting this long.
STUCK_QUEUED_AFTER = timedelta(minutes=30)


def create_worker_context(
    settings: Settings, sessions: SessionFactory, *, packages: PackageSource | None = None
) -> WorkerContext:
    """Everything a worker needs, from settings (the ImageBuilder cache, sandbox, store, …)."""
    from sysup.imagebuilders.cache import ImageBuilderCache
    from sysup.imagebuilders.runner import ImageBuilderRunner
    from sysup.imagebuilders.sandbox import find_sandbox
    from sysup.imagebuilders.workspace import make_workspace
    from sysup.upstream.fetch import Fetcher

    fetcher = Fetcher(timeout=settings.fetch_timeout, retries=settings.fetch_retries)
    if packages is None:
        from sysup.builds.package_source import CachedPackages
        from sysup.imagebuilders.package_cache import PackageCache

        packages = CachedPackages(
            PackageCache(settings.package_cache_dir, fetcher),
            {name: distro.public_keys for name, distro in settings.distros.items()},
        )
    settings.workspace_dir.mkdir(parents=True, exist_ok=True)
    return WorkerContext(
        sessions=sessions,
        store=Store(settings.store_dir),
        ib_cache=ImageBuilderCache(settings.ib_cache_dir, fetcher, settings.ib_cache_max_bytes),
        sandbox=find_sandbox(settings.sandbox, build_uid=settings.sandbox_uid),
        make_workspace=make_workspace,
        make_runner=ImageBuilderRunner,
        workspace_root=settings.workspace_dir,
        distros=settings.distros,
        build_timeout=settings.build_timeout,
        output_limit=settings.build_output_limit,
        lease_timeout=settings.lease_timeout,
        lease_renew_interval=settings.lease_renew_interval,
        packages=packages,
    )


def create_build_queue(
    settings: Settings,
    sessions: SessionFactory,
    *,
    context: Callable[[], WorkerContext] | None = None,
    huey: Huey | None = None,
) -> BuildQueue:
    """The Huey queue with its tasks registered. ``context`` is called once, lazily, by the first task a
    consumer runs; producers (the API) never call it."""
    huey = huey or create_huey(settings.queue_url, settings.data_dir)
    made: list[WorkerContext] = []

    def worker_context() -> WorkerContext:
        if not made:
            made.append((context or (lambda: create_worker_context(settings, sessions)))())
        return made[0]

    def run(build_id: int) -> None:
        run_build(build_id, worker_context())

    def reap() -> list[int]:
        requeue = records.reap(sessions, max_attempts=MAX_BUILD_ATTEMPTS, stuck_after=STUCK_QUEUED_AFTER)
        return requeue + lost_tasks(huey, sessions, settings.lease_timeout, exclude=set(requeue))

    def prune() -> Any:
        store = Store(settings.store_dir)
        service = BuildService.from_settings(sessions, lambda _id: None, settings)
        removed = store.prune(settings.store_max_bytes, keep=service.live_bin_dirs())
        # Also in a process that has not built yet: the cache directory is shared, the locks are flocks.
        if made:
            made[0].ib_cache.evict()
        else:
            from sysup.imagebuilders.cache import ImageBuilderCache
            from sysup.upstream.fetch import Fetcher

            with Fetcher() as fetcher:
                ImageBuilderCache(settings.ib_cache_dir, fetcher, settings.ib_cache_max_bytes).evict()
        housekeeping(settings, sessions)
        return removed

    def refresh() -> None:
        refresh_catalog(settings, sessions)

    return register_tasks(
        huey, run_build=run, reap=reap, prune=prune,
        reap_interval=max(settings.lease_timeout, timedelta(minutes=1)),
        refresh=refresh, refresh_interval=settings.catalog_refresh_interval,
    )


def lost_tasks(huey: Huey, sessions: SessionFactory, grace: timedelta, *, exclude: set[int]) -> list[int]:
    """Queued builds older than ``grace`` with no task waiting in ``huey``: the queue lost them (a Redis
    restarted without persistence, an enqueue that failed after the commit). A duplicate task is harmless
    (``records.claim`` makes it a no-op), so the race with a task being popped right now is acceptable."""
    queued = records.queued_before(sessions, utcnow() - grace)
    if not queued:
        return []
    waiting = {int(task.args[0]) for task in huey.pending() if task.name.endswith(BUILD_TASK) and task.args}
    return [build_id for build_id in queued if build_id not in waiting and build_id not in exclude]


def create_build_service(settings: Settings, sessions: SessionFactory, queue: BuildQueue) -> BuildService:
    """The service the API calls; it enqueues on ``queue`` after each commit."""
    return BuildService.from_settings(sessions, queue.enqueue, settings)


@dataclass
class RunningConsumer:
    """A Huey consumer running in this process and the lease reaper beside it."""

    consumer: Any
    reaper: LeaseReaper

    def stop(self) -> None:
        self.reaper.stop()
        self.consumer.stop()


def reaper_interval(settings: Settings) -> timedelta:
    """How often a worker looks for expired leases: half a lease, at least every second."""
    return max(timedelta(seconds=1), settings.lease_timeout / 2)


#: Longest wait between two polls of an idle worker (SqliteHuey cannot block on a pop; RedisHuey blocks and
#: ignores this). Huey's default backs off to 10 s, so the first build after a quiet spell waited up to 10 s
#: before it started (bench: 7.5 s POST→200 for a 1 s build); a poll is one indexed SELECT.
IDLE_POLL_MAX_SECONDS = 0.1


def start_consumer(queue: BuildQueue, workers: int, *, reap_every: timedelta = timedelta(seconds=30)) -> Any:
    """Run a Huey consumer with ``workers`` threads in this process (``sysup serve``); call ``.stop()``."""
    consumer = queue.huey.create_consumer(
        workers=max(1, workers), worker_type="thread", periodic=True, max_delay=IDLE_POLL_MAX_SECONDS
    )
    consumer.start()
    reaper = LeaseReaper(queue, reap_every)
    reaper.start()
    return RunningConsumer(consumer, reaper)
