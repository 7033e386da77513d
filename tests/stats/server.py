"""A server with empty statistics over an already synced catalog, and the worker's record calls.

``fresh_settings`` copies the database of a synced server (SQLite backup) and empties every build and
statistics table, so a scripted sequence of requests is the only thing the statistics can count.
``finish`` records a build's end through ``sysup.builds.records`` — the calls a worker makes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sysup.config import Settings

EMPTIED_TABLES = (
    "stats_requested_packages",
    "stats_requests",
    "stats_builds",
    "stats_daily",
    "build_requests",
    "builds",
)


def fresh_settings(source: Settings, data_dir: Path) -> Settings:
    """Settings for ``data_dir`` with a copy of ``source``'s catalog and no builds or statistics."""
    import sysup.builds.models  # (tables on Base.metadata)
    import sysup.stats.models  # noqa: F401
    from sysup.database import Base, create_engine_for

    source_path = source.resolved_database_url.removeprefix("sqlite:///")
    target = data_dir / "sysup.db"
    with sqlite3.connect(source_path) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    url = f"sqlite:///{target}"
    engine = create_engine_for(url)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()
    with sqlite3.connect(target) as copy:
        for table in EMPTIED_TABLES:
            copy.execute(f"DELETE FROM {table}")
    return source.model_copy(update={"data_dir": data_dir, "database_url": url})


def finish(state: Any, request_hash: str, *, ok: bool) -> str:
    """Claim the build of ``request_hash`` and record it done (with a stored log) or failed, as a worker
    does; returns its bin_dir."""
    from datetime import timedelta

    from sysup.builds import records
    from sysup.builds.models import Build, BuildRequestRecord
    from sysup.database import session_factory

    sessions = session_factory(state.engine)
    with sessions() as session:
        build = session.scalars(
            select(Build)
            .join(BuildRequestRecord, BuildRequestRecord.image_key == Build.image_key)
            .where(BuildRequestRecord.request_hash == request_hash)
        ).one()
    job = records.claim(sessions, build.id, "stats-test", timedelta(minutes=1))
    assert job is not None
    if ok:
        state.store.write_text(job["bin_dir"], "build.log", "built\n")
        result = {"images": [], "manifest": {"base-files": "1", "busybox": "2"}, "bin_dir": job["bin_dir"]}
        assert records.finish_done(
            sessions, build.id, "stats-test", result=result, bin_dir=job["bin_dir"], stdout="", stderr=""
        )
    else:
        assert records.finish_failed(
            sessions, build.id, "stats-test", detail="Error: broken", error_kind="BuildError"
        )
    return str(job["bin_dir"])
