"""Request events buffered in memory reach the database in batches, and on close."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from sysup.database import Base, create_engine_for, session_factory
from sysup.stats.buffer import RequestBuffer, buffer_for, close_buffer
from sysup.stats.models import RequestedPackage, RequestEvent
from sysup.stats.recorder import StatsRecorder

AT = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'stats.db'}")
    Base.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def event(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        api="v1",
        client="luci/1",
        distro="openwrt",
        version="24.10.4",
        target="ath79/generic",
        profile="tplink_archer-c7-v5",
        request_hash="a" * 64,
        packages=("luci", "-ppp", "+owut"),
        has_defaults=False,
        cache_hit=True,
        at=AT,
    )
    values.update(overrides)
    return values


def counts(engine: Engine) -> tuple[int, int]:
    with session_factory(engine)() as session:
        return (
            session.scalar(select(func.count()).select_from(RequestEvent)) or 0,
            session.scalar(select(func.count()).select_from(RequestedPackage)) or 0,
        )


def test_record_requests_writes_events_and_their_packages(engine: Engine) -> None:
    recorder = StatsRecorder(session_factory(engine))
    assert recorder.record_requests([event(), event(client="owut/1", packages=())]) == 2
    assert counts(engine) == (2, 2)  # luci and owut of the first; "-ppp" is a removal
    with session_factory(engine)() as session:
        clients = sorted(session.scalars(select(RequestEvent.client)))
        names = sorted(session.scalars(select(RequestedPackage.name)))
    assert clients == ["luci/1", "owut/1"] and names == ["luci", "owut"]


def test_buffer_writes_in_the_background_and_on_close(engine: Engine) -> None:
    buffer = RequestBuffer(StatsRecorder(session_factory(engine)), flush_seconds=0.05)
    buffer.add(**event())
    deadline = time.monotonic() + 5
    while counts(engine)[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert counts(engine)[0] == 1
    buffer.add(**event(request_hash="b" * 64))
    buffer.close()
    assert counts(engine)[0] == 2


def test_refused_batches_are_dropped_and_counted(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: every insert fails
    try:
        buffer = RequestBuffer(StatsRecorder(session_factory(engine)), flush_seconds=60)
        buffer.add(**event())
        buffer.add(**event())
        assert buffer.flush() == 0
        assert buffer.dropped == 2
        assert buffer.flush() == 0 and buffer.dropped == 2  # not retried forever
    finally:
        engine.dispose()


def test_oldest_events_are_dropped_beyond_the_bound(engine: Engine) -> None:
    buffer = RequestBuffer(StatsRecorder(session_factory(engine)), flush_seconds=60, max_pending=2)
    for letter in "abc":
        buffer.add(**event(request_hash=letter * 64))
    assert buffer.dropped == 1
    assert buffer.flush() == 2
    with session_factory(engine)() as session:
        assert sorted(session.scalars(select(RequestEvent.request_hash))) == ["b" * 64, "c" * 64]
    buffer.close()


def test_one_buffer_per_engine_closed_by_close_buffer(engine: Engine) -> None:
    buffer = buffer_for(engine)
    assert buffer_for(engine) is buffer
    buffer.add(**event())
    close_buffer(engine)
    assert counts(engine)[0] == 1
    assert buffer_for(engine) is not buffer
    close_buffer(engine)
