"""The time series and popular lists the web stats page and the stats routes read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sysup.database import Base, create_engine_for, session_factory
from sysup.stats import queries
from sysup.stats.recorder import StatsRecorder
from tests.stats.test_recorder import add_build, record

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'stats.db'}")
    Base.metadata.create_all(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def test_percentile_nearest_rank() -> None:
    assert queries.percentile([], 0.95) is None
    assert queries.percentile(range(1, 21), 0.95) == 19
    assert queries.percentile([7.0], 0.95) == 7.0


def test_hourly_series_by_version_and_cache_rate(sessions: sessionmaker[Session]) -> None:
    recorder = StatsRecorder(sessions)
    record(recorder, NOW.replace(minute=1), version="24.10.4", cache_hit=True)
    record(recorder, NOW.replace(minute=2), version="24.10.4")
    record(recorder, NOW.replace(minute=3), version="25.12.1")
    record(recorder, NOW - timedelta(hours=1), version="25.12.1", cache_hit=True)
    since, until = NOW - timedelta(hours=3), NOW + timedelta(hours=1)
    assert queries.request_series(sessions, period="hour", by="version", since=since, until=until) == [
        {"bucket": "2026-11-27T11:00:00Z", "key": "25.12.1", "count": 1},
        {"bucket": "2026-11-27T12:00:00Z", "key": "24.10.4", "count": 2},
        {"bucket": "2026-11-27T12:00:00Z", "key": "25.12.1", "count": 1},
    ]
    assert queries.cache_series(sessions, period="hour", since=since, until=until) == [
        {"bucket": "2026-11-27T11:00:00Z", "hits": 1, "misses": 0, "rate": 1.0},
        {"bucket": "2026-11-27T12:00:00Z", "hits": 1, "misses": 2, "rate": pytest.approx(1 / 3)},
    ]
    by_target = queries.request_series(sessions, period="day", by="target", since=since, until=until)
    assert by_target == [{"bucket": "2026-11-27T00:00:00Z", "key": "ath79/generic", "count": 4}]


def test_build_times_mean_and_p95(sessions: sessionmaker[Session]) -> None:
    for build_id, seconds in enumerate([10, 20, 30, 40, 100], start=1):
        add_build(sessions, build_id, "done", NOW - timedelta(hours=1), float(seconds), manifest={})
    add_build(sessions, 9, "failed", NOW - timedelta(hours=1), 500.0)
    StatsRecorder(sessions).collect_builds(timedelta(days=90), NOW)
    times = queries.build_times(sessions, since=NOW - timedelta(days=1), until=NOW)
    assert times == {"count": 5, "mean": pytest.approx(40.0), "p95": pytest.approx(100.0)}
    series = queries.build_series(sessions, period="day", since=NOW - timedelta(days=1), until=NOW)
    assert series == [
        {"bucket": "2026-11-27T00:00:00Z", "done": 5, "failed": 1, "mean_seconds": pytest.approx(700 / 6)}
    ]
    assert queries.popular_targets(sessions) == []  # no requests, only builds
    totals = queries.totals(sessions)
    assert totals.builds == {"done": 5, "failed": 1}
    assert totals.build_buckets["10"] == 1 and totals.build_buckets["30"] == 3
    assert totals.build_buckets["120"] == 5 and totals.build_buckets["1800"] == 6


def test_popular_targets_with_mean_build_seconds(sessions: sessionmaker[Session]) -> None:
    recorder = StatsRecorder(sessions)
    record(recorder, NOW, target="x86/64")
    record(recorder, NOW, target="x86/64")
    record(recorder, NOW, target="ath79/generic")
    add_build(sessions, 1, "done", NOW - timedelta(hours=1), 30.0, manifest={})
    add_build(sessions, 2, "done", NOW - timedelta(hours=1), 60.0, manifest={})
    recorder.collect_builds(timedelta(days=90), NOW)
    assert queries.popular_targets(sessions) == [
        {"target": "x86/64", "count": 2, "build_seconds": pytest.approx(45.0)},
        {"target": "ath79/generic", "count": 1, "build_seconds": None},
    ]
    document = queries.timeseries(
        sessions, period="day", by="version", since=NOW - timedelta(days=1), until=NOW + timedelta(hours=1)
    )
    assert document["popular_clients"] == [{"name": "luci/1", "count": 3}]
    assert document["popular_packages"] == [{"name": "luci", "count": 3}]
