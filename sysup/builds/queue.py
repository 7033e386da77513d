"""The Huey queue of builds (DESIGN.md decision 3).

``SqliteHuey`` in the data directory by default (embedded, survives restarts), ``RedisHuey`` for
``redis://`` URLs (any number of ``sysup worker`` processes). Tasks carry only the build id; the build
record is the source of truth, and the lease on it (``records.claim``) makes a task idempotent. Huey never
redelivers a task whose worker died: the periodic reaper re-queues such builds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab

log = logging.getLogger(__name__)

#: Task names are fixed so producers and consumers agree whatever module path they were registered from.
BUILD_TASK = "sysup.build"
REAP_TASK = "sysup.reap"
PRUNE_TASK = "sysup.prune"
REFRESH_TASK = "sysup.refresh"


def create_huey(
    queue_url: str | None, data_dir: Path, *, name: str = "sysup", immediate: bool = False
) -> Huey:
    """A Huey for ``queue_url`` (``None`` → SQLite file ``<data_dir>/queue.db``; ``redis://…`` → Redis)."""
    if queue_url and queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey(name, url=queue_url, immediate=immediate, utc=True)
    if queue_url and queue_url.startswith("sqlite:///"):
        filename = Path(queue_url.removeprefix("sqlite:///"))
    elif queue_url:
        raise ValueError(f"unsupported queue_url: {queue_url!r} (use redis://… or sqlite:///path)")
    else:
        filename = Path(data_dir) / "queue.db"
    filename.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(filename), immediate=immediate, utc=True)


@dataclass
class BuildQueue:
    """The registered tasks of one Huey instance; ``enqueue`` is what ``BuildService`` calls."""

    huey: Huey
    build_task: Any
    reap_task: Any
    prune_task: Any | None
    #: The ``reap()`` given to ``register_tasks`` (what the periodic reaper and ``LeaseReaper`` call).
    reap: Callable[[], list[int]] | None = None

    def enqueue(self, build_id: int) -> None:
        self.build_task(build_id)

    def requeue_expired(self) -> list[int]:
        """Run ``reap()`` and enqueue what it returns (builds whose worker died, tasks the queue lost)."""
        requeued = list(self.reap()) if self.reap is not None else []
        for build_id in requeued:
            log.warning("re-queuing build %s (lease expired or task lost)", build_id)
            self.enqueue(build_id)
        return requeued

    def pending(self) -> int:
        """Tasks waiting in Huey (not the same as queued builds: duplicates and periodic tasks count)."""
        return int(self.huey.pending_count())


def _every(interval: timedelta) -> Callable[[Any], bool]:
    """A Huey periodic validator for whole minutes (Huey checks once a minute)."""
    minutes = max(1, int(interval.total_seconds() // 60))
    if minutes == 1:
        return crontab(minute="*")
    return crontab(minute=f"*/{minutes}")


def register_tasks(
    huey: Huey,
    *,
    run_build: Callable[[int], Any],
    reap: Callable[[], list[int]],
    prune: Callable[[], Any] | None = None,
    reap_interval: timedelta = timedelta(minutes=1),
    prune_interval: timedelta = timedelta(minutes=15),
    refresh: Callable[[], Any] | None = None,
    refresh_interval: timedelta = timedelta(minutes=15),
) -> BuildQueue:
    """Register the build task, the lease reaper and the prune hook on ``huey``.

    ``run_build(build_id)`` must be idempotent. ``reap()`` commits and returns build ids to enqueue again.
    ``prune()`` trims the store and the ImageBuilder cache; ``refresh()`` re-syncs the catalog.
    """

    @huey.task(name=BUILD_TASK)
    def build(build_id: int) -> None:
        run_build(int(build_id))

    @huey.periodic_task(_every(reap_interval), name=REAP_TASK)
    def reaper() -> None:
        for build_id in reap():
            log.warning("re-queuing build %s (lease expired or task lost)", build_id)
            build(build_id)

    prune_task = None
    if prune is not None:

        @huey.periodic_task(_every(prune_interval), name=PRUNE_TASK)
        def pruner() -> None:
            prune()

        prune_task = pruner

    if refresh is not None:

        @huey.periodic_task(_every(refresh_interval), name=REFRESH_TASK)
        def refresher() -> None:
            refresh()

    return BuildQueue(huey=huey, build_task=build, reap_task=reaper, prune_task=prune_task, reap=reap)


class LeaseReaper(threading.Thread):
    """Calls ``queue.requeue_expired()`` every ``interval`` in a worker process.

    Huey's periodic tasks run at most once a minute; with short leases a dead worker's build would wait that
    long. Every worker runs one of these: ``reap()`` is a compare-and-set, so reapers on many machines
    re-queue each build once. Errors (database or Redis briefly away) are logged and retried next round.
    """

    def __init__(self, queue: BuildQueue, interval: timedelta) -> None:
        super().__init__(name="sysup-lease-reaper", daemon=True)
        self.queue = queue
        self.interval = max(0.5, interval.total_seconds())
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.queue.requeue_expired()
            except Exception as error:  # a dependency is briefly away: try again next round
                log.warning("lease reaper: %s: %s", type(error).__name__, error)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def start_embedded_consumer(settings: Any) -> Any:
    """Start ``settings.workers`` build threads (and the periodic reaper/pruner) inside this process, as
    ``sysup serve`` does; returns the Huey consumer (call ``.stop()`` on shutdown)."""
    from sysup.builds.runtime import create_build_queue, reaper_interval, start_consumer
    from sysup.database import create_engine_for, session_factory

    sessions = session_factory(create_engine_for(settings.resolved_database_url))
    return start_consumer(create_build_queue(settings, sessions), settings.workers,
                          reap_every=reaper_interval(settings))
