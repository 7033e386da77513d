"""Wiring from ``Settings`` to the build machinery, for ``sysup worker``, ``sysup serve`` and the API.

This is the only module of ``sysup.builds`` that reads ``Settings``; it passes plain values down.
Imports of ``sysup.imagebuilders`` happen inside the functions so the API process, which only enqueues,
never loads the build tooling.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from huey import Huey

from sysup.builds import records
from sysup.builds.queue import BuildQueue, create_huey, register_tasks
from sysup.builds.records import SessionFactory
from sysup.builds.service import BuildService
from sysup.builds.worker import PackageSource, WorkerContext, run_build
from sysup.config import Settings
from sysup.store import Store

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
        sandbox=find_sandbox(settings.sandbox),
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
        return records.reap(sessions, max_attempts=MAX_BUILD_ATTEMPTS, stuck_after=STUCK_QUEUED_AFTER)

    def prune() -> Any:
        store = Store(settings.store_dir)
        service = BuildService.from_settings(sessions, lambda _id: None, settings)
        removed = store.prune(settings.store_max_bytes, keep=service.live_bin_dirs())
        if made:
            made[0].ib_cache.evict()
        return removed

    return register_tasks(
        huey, run_build=run, reap=reap, prune=prune,
        reap_interval=max(settings.lease_timeout, timedelta(minutes=1)),
    )


def create_build_service(settings: Settings, sessions: SessionFactory, queue: BuildQueue) -> BuildService:
    """The service the API calls; it enqueues on ``queue`` after each commit."""
    return BuildService.from_settings(sessions, queue.enqueue, settings)


def start_consumer(queue: BuildQueue, workers: int) -> Any:
    """Run a Huey consumer with ``workers`` threads in this process (``sysup serve``); call ``.stop()``."""
    consumer = queue.huey.create_consumer(workers=max(1, workers), worker_type="thread", periodic=True)
    consumer.start()
    return consumer
