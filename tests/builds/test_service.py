"""BuildService against a real SQLite database: dedupe, queue positions, TTLs, limits, purge."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from asud.build.stages import BuildStage, BuildStatus
from asud.errors import Overloaded, RateLimited
from sysup.builds import records
from sysup.builds.models import Build
from sysup.builds.service import BuildService, TTLs
from tests.builds.factories import make_sessions, validated


class Recorder:
    """The enqueue seam: remembers the build ids handed to the queue."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, build_id: int) -> None:
        with self._lock:
            self.ids.append(build_id)


def test_hundred_concurrent_identical_posts_make_one_build(tmp_path: Path, database_url: str) -> None:
    sessions = make_sessions(tmp_path, database_url)
    enqueued = Recorder()
    service = BuildService(sessions, enqueued, max_pending_jobs=1000, max_pending_per_client=1000)
    request = validated()
    barrier = threading.Barrier(100)
    views = []
    errors = []

    def post() -> None:
        barrier.wait()
        try:
            views.append(service.submit(request, client="luci/1"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(enqueued.ids) == 1
    with sessions() as session:
        assert session.query(Build).count() == 1
    assert {view.request_hash for view in views} == {request.request_hash}
    assert all(view.status is BuildStatus.QUEUED and view.queue_position == 0 for view in views)


def test_queue_positions_and_views(tmp_path: Path) -> None:
    service = BuildService(make_sessions(tmp_path), Recorder())
    first = service.submit(validated(packages=["a"]))
    second = service.submit(validated(packages=["b"]))
    assert (first.queue_position, second.queue_position) == (0, 1)
    assert second.detail == "queued" and second.imagebuilder_status == "queued"
    assert second.request["packages"] == ["b"] and second.request["client"] is None
    assert service.queue_length() == 2
    assert service.get("0" * 64) is None


def test_same_image_different_request_shares_build(tmp_path: Path) -> None:
    enqueued = Recorder()
    service = BuildService(make_sessions(tmp_path), enqueued)
    a = validated(client="luci/1")
    b = validated(client="ofs/2", defaults="")
    assert a.request_hash == b.request_hash  # empty defaults mean none
    service.submit(a)
    service.submit(b)
    assert len(enqueued.ids) == 1


def _finish(sessions, build_id: int, *, ok: bool) -> None:  # type: ignore[no-untyped-def]
    job = records.claim(sessions, build_id, "w1", timedelta(seconds=60))
    assert job is not None
    records.set_stage(sessions, build_id, "w1", BuildStage.BUILDING_IMAGE)
    if ok:
        assert records.finish_done(
            sessions, build_id, "w1", result={"images": [], "id": "generic"}, bin_dir=job["bin_dir"],
            stdout="out", stderr="",
        )
    else:
        assert records.finish_failed(
            sessions, build_id, "w1", detail="Error: boom", error_kind="BuildError", stderr="err"
        )


def test_started_done_and_cache_hit(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    enqueued = Recorder()
    service = BuildService(sessions, enqueued)
    request = validated()
    service.submit(request)
    build_id = enqueued.ids[0]
    records.claim(sessions, build_id, "w1", timedelta(seconds=60))
    records.set_stage(sessions, build_id, "w1", BuildStage.VALIDATE_MANIFEST)
    started = service.get(request.request_hash)
    assert started is not None and started.status is BuildStatus.STARTED
    assert started.queue_position is None and started.detail == "started"
    assert started.imagebuilder_status == "calculate_packages_hash"
    assert records.finish_done(
        sessions, build_id, "w1", result={"id": "generic"}, bin_dir=request.bin_dir, stdout="", stderr=""
    )
    done = service.submit(request)
    assert done.status is BuildStatus.DONE and done.result == {"id": "generic"}
    assert done.bin_dir == request.bin_dir and done.imagebuilder_status == "done"
    assert len(enqueued.ids) == 1
    assert service.get(request.request_hash) is service.get(request.request_hash)  # LRU hit
    assert request.bin_dir in service.live_bin_dirs()


def test_expired_failure_is_rebuilt_and_purge(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    enqueued = Recorder()
    service = BuildService(sessions, enqueued, ttls=TTLs(failure=timedelta(seconds=0)))
    request = validated()
    service.submit(request)
    _finish(sessions, enqueued.ids[0], ok=False)
    failed = service.get(request.request_hash)
    assert failed is not None and failed.status is BuildStatus.FAILED and failed.detail == "Error: boom"
    again = service.submit(request)
    assert again.status is BuildStatus.QUEUED and len(enqueued.ids) == 2

    cached = BuildService(sessions, enqueued, ttls=TTLs(failure=timedelta(hours=1)))
    other = validated(packages=["htop"])
    cached.submit(other)
    _finish(sessions, enqueued.ids[-1], ok=False)
    assert cached.submit(other).status is BuildStatus.FAILED
    assert cached.purge(other.request_hash) is True
    assert cached.submit(other).status is BuildStatus.QUEUED
    assert cached.purge(other.request_hash) is False  # queued: nothing to purge
    assert cached.purge("f" * 64) is False


def test_overload_limits(tmp_path: Path) -> None:
    service = BuildService(make_sessions(tmp_path), Recorder(), max_pending_jobs=2, max_pending_per_client=5)
    service.submit(validated(packages=["a"]))
    service.submit(validated(packages=["b"]))
    with pytest.raises(Overloaded) as info:
        service.submit(validated(packages=["c"]))
    assert info.value.status_code == 529
    assert "too many build requests: 2" in info.value.detail
    # a request for an existing build is never refused
    assert service.submit(validated(packages=["a"])).status is BuildStatus.QUEUED

    per_client = BuildService(make_sessions(tmp_path / "b"), Recorder(), max_pending_per_client=1)
    per_client.submit(validated(packages=["a"]), client="x")
    with pytest.raises(RateLimited) as limited:  # one client's bound: 429, not the server-wide 529
        per_client.submit(validated(packages=["b"]), client="x")
    assert limited.value.status_code == 429
    per_client.submit(validated(packages=["b"]), client="y")


def test_private_store_kind_for_defaults(tmp_path: Path) -> None:
    sessions = make_sessions(tmp_path)
    service = BuildService(sessions, Recorder())
    request = validated(defaults="uci set system.@system[0].hostname=x")
    service.submit(request)
    with sessions() as session:
        build = session.query(Build).one()
    assert build.store_kind == "private" and build.bin_dir == request.bin_dir and "-" in build.bin_dir
    assert build.result_ttl == int(TTLs().defaults.total_seconds())
