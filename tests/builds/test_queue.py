"""Leases, the reaper and the Huey wiring, on a real SQLite database and a real SqliteHuey file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from asud.build.stages import BuildStatus
from sysup.builds import records
from sysup.builds.models import Build, utcnow
from sysup.builds.queue import create_huey, register_tasks
from sysup.builds.service import BuildService
from tests.builds.factories import make_sessions, validated


def test_claim_is_idempotent_and_exclusive(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    ids: list[int] = []
    service = BuildService(sessions, ids.append)
    service.submit(validated())
    lease = timedelta(seconds=60)
    assert records.claim(sessions, ids[0], "w1", lease) is not None
    assert records.claim(sessions, ids[0], "w2", lease) is None  # leased by a live worker
    assert records.renew(sessions, ids[0], "w1", lease)
    assert not records.renew(sessions, ids[0], "w2", lease)
    assert records.finish_done(sessions, ids[0], "w1", result={}, bin_dir="x", stdout="", stderr="")
    assert records.claim(sessions, ids[0], "w3", lease) is None  # done


def test_expired_lease_is_requeued_then_failed_after_max_attempts(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    ids: list[int] = []
    service = BuildService(sessions, ids.append)
    request = validated()
    service.submit(request)
    build_id = ids[0]
    lease = timedelta(seconds=1)
    assert records.claim(sessions, build_id, "dead-worker", lease)
    later = utcnow() + timedelta(seconds=5)
    assert records.reap(sessions, max_attempts=2, stuck_after=timedelta(minutes=30), now=later) == [build_id]
    view = service.get(request.request_hash)
    assert view is not None and view.status is BuildStatus.QUEUED
    # the dead worker cannot write any more
    assert not records.finish_done(sessions, build_id, "dead-worker", result={}, bin_dir="x", stdout="",
                                   stderr="")
    assert records.claim(sessions, build_id, "second-worker", lease)
    even_later = utcnow() + timedelta(seconds=10)
    assert records.reap(sessions, max_attempts=2, stuck_after=timedelta(minutes=30), now=even_later) == []
    view = service.get(request.request_hash)
    assert view is not None and view.status is BuildStatus.FAILED and "abandoned" in view.detail


def test_lost_queued_task_is_requeued_once_per_interval(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    ids: list[int] = []
    BuildService(sessions, ids.append).submit(validated())
    stuck = timedelta(minutes=30)
    later = utcnow() + timedelta(hours=1)
    assert records.reap(sessions, max_attempts=3, stuck_after=stuck, now=later) == ids
    assert records.reap(sessions, max_attempts=3, stuck_after=stuck, now=later) == []


def test_huey_task_runs_build_by_id_and_reaper_enqueues(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    huey = create_huey(None, tmp_path / "data")
    assert (tmp_path / "data" / "queue.db").exists()
    ran: list[int] = []

    def run_build(build_id: int) -> None:
        if records.claim(sessions, build_id, "w", timedelta(seconds=60)) is None:
            return
        ran.append(build_id)
        records.finish_done(sessions, build_id, "w", result={}, bin_dir="b", stdout="", stderr="")

    reaped: list[list[int]] = [[]]
    queue = register_tasks(huey, run_build=run_build, reap=lambda: reaped.pop(), prune=lambda: None)
    service = BuildService(sessions, queue.enqueue)
    request = validated()
    service.submit(request)
    assert queue.pending() == 1
    task = huey.dequeue()
    huey.execute(task)
    assert ran == [1]
    view = service.get(request.request_hash)
    assert view is not None and view.status is BuildStatus.DONE
    # a duplicate task (e.g. from the reaper) is a no-op
    queue.enqueue(1)
    huey.execute(huey.dequeue())
    assert ran == [1]
    # the reaper task enqueues what reap() returned
    reaped.append([1])
    queue.reap_task.call_local()
    assert queue.pending() == 1
    with sessions() as session:
        assert session.get(Build, 1).status == "done"
