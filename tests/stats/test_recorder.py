"""Recording, collecting build outcomes from ``builds``, and the roll-up into daily aggregates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sysup.builds.models import Build
from sysup.database import Base, create_engine_for, session_factory
from sysup.stats import queries
from sysup.stats.models import BuildEvent, DailyAggregate, RequestedPackage, RequestEvent
from sysup.stats.recorder import StatsRecorder, manifest_hash, requested_names, retention_cutoff

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'stats.db'}")
    Base.metadata.create_all(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def record(recorder: StatsRecorder, at: datetime, **overrides: Any) -> None:
    values: dict[str, Any] = dict(
        api="v1",
        client="luci/1",
        distro="openwrt",
        version="24.10.4",
        target="ath79/generic",
        profile="tplink_archer-c7-v5",
        request_hash="a" * 64,
        packages=["luci", "-ppp"],
        has_defaults=False,
        cache_hit=False,
        at=at,
    )
    values.update(overrides)
    assert recorder.record_request(**values)


def add_build(
    sessions: sessionmaker[Session],
    build_id: int,
    status: str,
    started: datetime,
    seconds: float,
    manifest: dict[str, str] | None = None,
    error_kind: str | None = None,
) -> None:
    with sessions() as session, session.begin():
        session.add(
            Build(
                id=build_id,
                image_key=f"{build_id:064x}",
                status=status,
                stage=status,
                queued_at=started,
                started_at=started,
                finished_at=started + timedelta(seconds=seconds),
                attempts=1,
                job={"distro": "openwrt", "version": "24.10.4", "target": "x86/64", "profile": "generic"},
                client="c",
                result={"manifest": manifest} if manifest is not None else None,
                detail="",
                error_kind=error_kind,
                stdout="",
                stderr="",
                result_ttl=60,
                failure_ttl=60,
            )
        )


def test_requested_names_skip_removals_and_plus() -> None:
    assert requested_names(["luci", "+curl", "-ppp", "luci"]) == ["luci", "curl"]


def test_manifest_hash_is_over_sorted_lines() -> None:
    import hashlib

    expected = hashlib.sha256(b"base-files - 1\nbusybox - 2\n").hexdigest()
    assert manifest_hash({"busybox": "2", "base-files": "1"}) == expected


def test_request_is_recorded_without_defaults_content(sessions: sessionmaker[Session]) -> None:
    recorder = StatsRecorder(sessions)
    record(recorder, NOW, has_defaults=True)
    with sessions() as session:
        event = session.scalars(select(RequestEvent)).one()
        names = session.scalars(select(RequestedPackage.name)).all()
    assert event.has_defaults and event.client == "luci/1" and not event.cache_hit
    assert names == ["luci"]
    assert not any(hasattr(event, name) for name in ("defaults", "defaults_hash"))


def test_recording_into_a_database_without_tables_does_not_raise(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert (
            StatsRecorder(session_factory(engine)).record_request(
                api="v1",
                client="x",
                distro="openwrt",
                version="1",
                target="a/b",
                profile="p",
                request_hash="h",
                packages=[],
                has_defaults=False,
                cache_hit=False,
            )
            is False
        )
    finally:
        engine.dispose()


def test_collect_builds_once_with_duration_and_manifest(sessions: sessionmaker[Session]) -> None:
    add_build(sessions, 1, "done", NOW - timedelta(minutes=5), 42.0, manifest={"busybox": "1.36"})
    add_build(sessions, 2, "failed", NOW - timedelta(minutes=4), 3.0, error_kind="ImageTooBig")
    recorder = StatsRecorder(sessions)
    assert recorder.collect_builds(timedelta(days=90), NOW) == 2
    assert recorder.collect_builds(timedelta(days=90), NOW) == 0
    with sessions() as session:
        events = {event.build_id: event for event in session.scalars(select(BuildEvent))}
    assert events[1].outcome == "done" and events[1].seconds == pytest.approx(42.0)
    assert events[1].manifest_hash == manifest_hash({"busybox": "1.36"})
    assert events[2].outcome == "failed" and events[2].error_kind == "ImageTooBig"
    assert events[2].manifest_hash is None


def test_roll_up_keeps_totals_exact_and_deletes_old_events(sessions: sessionmaker[Session]) -> None:
    recorder = StatsRecorder(sessions)
    old = NOW - timedelta(days=10)
    record(recorder, old, packages=["luci", "curl"], cache_hit=True)
    record(recorder, old + timedelta(hours=1), client="owut/1", packages=["luci"])
    record(recorder, NOW - timedelta(hours=1), packages=["luci"])
    add_build(sessions, 7, "done", old, 20.0, manifest={})
    add_build(sessions, 8, "done", NOW - timedelta(hours=2), 100.0, manifest={})
    recorder.collect_builds(timedelta(days=90), NOW)
    before = queries.totals(sessions)
    packages_before = queries.popular_packages(sessions)
    clients_before = queries.popular_clients(sessions)
    targets_before = queries.popular_targets(sessions)

    retention = timedelta(days=3)
    assert retention_cutoff(NOW, retention) == datetime(2026, 11, 24, tzinfo=UTC)
    assert recorder.roll_up(retention, NOW) == 3  # two requests and one build were older than the cutoff
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(RequestEvent)) == 1
        assert session.scalar(select(func.count()).select_from(RequestedPackage)) == 1
        assert session.scalar(select(func.count()).select_from(BuildEvent)) == 1
        assert session.scalar(select(func.count()).select_from(DailyAggregate)) > 0

    assert queries.totals(sessions) == before
    assert before.requests == 3 and before.cache_hits == 1 and before.builds == {"done": 2}
    assert queries.popular_packages(sessions) == packages_before == [("luci", 3), ("curl", 1)]
    assert queries.popular_clients(sessions) == clients_before == [("luci/1", 2), ("owut/1", 1)]
    assert queries.popular_targets(sessions) == targets_before
    # a second roll-up finds nothing more to move, and collecting does not bring the old build back
    assert recorder.roll_up(retention, NOW) == 0
    assert recorder.collect_builds(retention, NOW) == 0
    assert queries.totals(sessions) == before
    # the daily series still reaches the rolled-up day
    series = queries.request_series(
        sessions, period="day", by="total", since=old - timedelta(days=1), until=NOW + timedelta(hours=1)
    )
    assert [(point["bucket"], point["count"]) for point in series] == [
        ("2026-11-17T00:00:00Z", 2),
        ("2026-11-27T00:00:00Z", 1),
    ]
