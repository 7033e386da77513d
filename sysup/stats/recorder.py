"""Writing statistics: request events from the API, build outcomes collected from ``builds``, roll-up.

Recording never fails a request: a database error is logged and the request goes on (stats are not worth
a failed build). Build outcomes are *read* from the ``builds`` table (``collect_builds``), so the worker
knows nothing about statistics; collection is incremental and idempotent (unique build id + finish time),
and runs before every stats read and ``/metrics`` scrape.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, exists, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from asud.build.stages import BuildStatus
from sysup.builds.models import Build
from sysup.database import session_factory
from sysup.stats.models import BuildEvent, DailyAggregate, RequestedPackage, RequestEvent

log = logging.getLogger(__name__)

#: Upper bounds (seconds) of the build-duration histogram (``/metrics`` and the ``build_le`` aggregates).
BUILD_SECONDS_BUCKETS: tuple[float, ...] = (5, 10, 30, 60, 120, 300, 600, 1800)
#: ``maintain`` rolls up at most this often per process (collecting happens on every call).
ROLL_UP_INTERVAL_SECONDS = 3600.0


def manifest_hash(manifest: Mapping[str, str]) -> str:
    """sha256 of the sorted ``name - version`` lines (one per line, each ending in a newline)."""
    text = "".join(f"{name} - {version}\n" for name, version in sorted(manifest.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def requested_names(packages: Iterable[str]) -> list[str]:
    """Package names a request asks for: ``+name`` counts as ``name``, ``-name`` removals are not counted."""
    names = []
    for package in packages:
        if package.startswith("-"):
            continue
        name = package.removeprefix("+")
        if name:
            names.append(name)
    return list(dict.fromkeys(names))


def retention_cutoff(now: datetime, retention: timedelta) -> datetime:
    """Midnight (UTC) of the first day whose events are still kept raw; older ones are rolled up."""
    day = (now.astimezone(UTC) - retention).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def bucket_label(bound: float) -> str:
    """``5`` → ``"5"``, ``0.5`` → ``"0.5"``: how a bucket bound is written in aggregates and ``le``."""
    return f"{bound:g}"


class StatsRecorder:
    """Records events into the tables of ``sysup.stats.models``; thread-safe, one per engine."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._last_roll_up = 0.0

    # -- requests -----------------------------------------------------------------------------------
    def record_request(
        self,
        *,
        api: str,
        client: str,
        distro: str,
        version: str,
        target: str,
        profile: str,
        request_hash: str,
        packages: Iterable[str],
        has_defaults: bool,
        cache_hit: bool,
        at: datetime | None = None,
    ) -> bool:
        """Store one accepted request; ``False`` (and a log line) when the database refused it."""
        try:
            with self._sessions() as session, session.begin():
                event = RequestEvent(
                    at=at or datetime.now(UTC),
                    api=api,
                    client=(client or "unknown")[:256],
                    distro=distro,
                    version=version,
                    target=target,
                    profile=profile,
                    request_hash=request_hash,
                    has_defaults=has_defaults,
                    cache_hit=cache_hit,
                )
                session.add(event)
                session.flush()
                names = requested_names(packages)
                session.add_all(RequestedPackage(request_id=event.id, name=name[:128]) for name in names)
            return True
        except SQLAlchemyError:
            log.exception("could not record a build request in the statistics")
            return False

    def record_requests(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Store many accepted requests (each :meth:`record_request`'s keyword arguments, ``at`` required) in
        one transaction with two bulk inserts; how many were stored (0, and a log line, on a database error).
        ``sysup.stats.buffer`` calls this so a hot API path records without a transaction per request."""
        if not events:
            return 0
        rows = [
            {
                "at": event["at"], "api": event["api"], "client": (event["client"] or "unknown")[:256],
                "distro": event["distro"], "version": event["version"], "target": event["target"],
                "profile": event["profile"], "request_hash": event["request_hash"],
                "has_defaults": event["has_defaults"], "cache_hit": event["cache_hit"],
            }
            for event in events
        ]
        try:
            # Core tables, not the ORM entities: the ORM's bulk path costs half again as much per row.
            events_table, packages_table = RequestEvent.__table__, RequestedPackage.__table__
            with self._sessions() as session, session.begin():
                ids = session.scalars(
                    insert(events_table).returning(events_table.c.id, sort_by_parameter_order=True), rows
                ).all()
                packages = [
                    {"request_id": request_id, "name": name[:128]}
                    for request_id, event in zip(ids, events, strict=True)
                    for name in requested_names(event["packages"])
                ]
                if packages:
                    session.execute(insert(packages_table), packages)
            return len(rows)
        except SQLAlchemyError:
            log.exception("could not record %d build requests in the statistics", len(rows))
            return 0

    def record_validated(self, validated: Any, *, api: str, client: str, cache_hit: bool) -> bool:
        """:meth:`record_request` for a ``sysup.build_requests.validate.ValidatedRequest``."""
        request = validated.request
        return self.record_request(
            api=api,
            client=client,
            distro=request.distro,
            version=request.version,
            target=request.target,
            profile=validated.profile,
            request_hash=validated.request_hash,
            packages=request.packages,
            has_defaults=validated.has_defaults,
            cache_hit=cache_hit,
        )

    # -- builds -------------------------------------------------------------------------------------
    def collect_builds(self, retention: timedelta, now: datetime | None = None) -> int:
        """Copy builds finished since the retention cutoff that are not recorded yet; returns how many."""
        now = now or datetime.now(UTC)
        cutoff = retention_cutoff(now, retention)
        recorded = exists().where(
            BuildEvent.build_id == Build.id, BuildEvent.finished_at == Build.finished_at
        )
        statuses = [BuildStatus.DONE.value, BuildStatus.FAILED.value]
        with self._sessions() as session:
            rows = session.execute(
                select(
                    Build.id,
                    Build.image_key,
                    Build.status,
                    Build.error_kind,
                    Build.job,
                    Build.started_at,
                    Build.queued_at,
                    Build.finished_at,
                    Build.result,
                ).where(
                    Build.status.in_(statuses),
                    Build.finished_at.is_not(None),
                    Build.finished_at >= cutoff,
                    ~recorded,
                )
            ).all()
        if not rows:
            return 0
        values = [_build_values(row) for row in rows]
        with self._sessions() as session, session.begin():
            statement = (
                _insert(session, BuildEvent)
                .values(values)
                .on_conflict_do_nothing(index_elements=["build_id", "finished_at"])
            )
            session.execute(statement)
        return len(values)

    # -- retention ----------------------------------------------------------------------------------
    def roll_up(self, retention: timedelta, now: datetime | None = None) -> int:
        """Add the events of days before the retention cutoff into ``stats_daily`` and delete them (one
        transaction: totals never count an event twice or lose one). Returns the events rolled up."""
        cutoff = retention_cutoff(now or datetime.now(UTC), retention)
        counts: dict[tuple[date, str, str, str, str], list[float]] = {}

        def add(day: date, kind: str, version: str, target: str, name: str, seconds: float = 0.0) -> None:
            entry = counts.setdefault((day, kind, version, target, name), [0, 0.0])
            entry[0] += 1
            entry[1] += seconds

        with self._sessions() as session, session.begin():
            requests = session.execute(
                select(
                    RequestEvent.id,
                    RequestEvent.at,
                    RequestEvent.version,
                    RequestEvent.target,
                    RequestEvent.client,
                    RequestEvent.cache_hit,
                ).where(RequestEvent.at < cutoff)
            ).all()
            ids = [row.id for row in requests]
            packages = session.execute(
                select(RequestedPackage.name, RequestEvent.at)
                .join(RequestEvent, RequestEvent.id == RequestedPackage.request_id)
                .where(RequestEvent.at < cutoff)
            ).all()
            builds = session.execute(
                select(
                    BuildEvent.id,
                    BuildEvent.finished_at,
                    BuildEvent.version,
                    BuildEvent.target,
                    BuildEvent.outcome,
                    BuildEvent.seconds,
                ).where(BuildEvent.finished_at < cutoff)
            ).all()
            for row in requests:
                day = _day(row.at)
                add(day, "request", row.version, row.target, row.client)
                add(day, "cache", row.version, row.target, "hit" if row.cache_hit else "miss")
            for name, at in packages:
                add(_day(at), "package", "", "", name)
            for row in builds:
                day = _day(row.finished_at)
                add(day, "build", row.version, row.target, row.outcome, row.seconds)
                for bound in BUILD_SECONDS_BUCKETS:
                    if row.seconds <= bound:
                        add(day, "build_le", row.version, row.target, bucket_label(bound))
            for (day, kind, version, target, name), (count, seconds) in counts.items():
                existing = session.scalars(
                    select(DailyAggregate).where(
                        DailyAggregate.day == day,
                        DailyAggregate.kind == kind,
                        DailyAggregate.version == version,
                        DailyAggregate.target == target,
                        DailyAggregate.name == name,
                    )
                ).one_or_none()
                if existing is None:
                    session.add(
                        DailyAggregate(
                            day=day,
                            kind=kind,
                            version=version,
                            target=target,
                            name=name,
                            count=int(count),
                            seconds=seconds,
                        )
                    )
                else:
                    existing.count += int(count)
                    existing.seconds += seconds
            if ids:
                session.execute(delete(RequestedPackage).where(RequestedPackage.request_id.in_(ids)))
                session.execute(delete(RequestEvent).where(RequestEvent.id.in_(ids)))
            if builds:
                session.execute(delete(BuildEvent).where(BuildEvent.id.in_([row.id for row in builds])))
        return len(requests) + len(builds)

    def maintain(self, retention: timedelta, now: datetime | None = None) -> None:
        """Collect finished builds, and roll up old events once per ``ROLL_UP_INTERVAL_SECONDS``; errors
        are logged (a stats page must still answer from what is there)."""
        try:
            self.collect_builds(retention, now)
            with self._lock:
                due = time.monotonic() - self._last_roll_up >= ROLL_UP_INTERVAL_SECONDS
                if due:
                    self._last_roll_up = time.monotonic()
            if due:
                self.roll_up(retention, now)
        except SQLAlchemyError:
            log.exception("could not update the statistics")

    def oldest_event(self) -> datetime | None:
        """When the oldest raw request event happened (``None`` without any)."""
        with self._sessions() as session:
            return session.scalar(select(func.min(RequestEvent.at)))


def _day(moment: datetime) -> date:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()


def _build_values(row: Any) -> dict[str, Any]:
    job = dict(row.job or {})
    started = row.started_at or row.queued_at
    seconds = max(0.0, (row.finished_at - started).total_seconds()) if started else 0.0
    manifest = (row.result or {}).get("manifest") if row.status == BuildStatus.DONE.value else None
    return {
        "build_id": row.id,
        "image_key": row.image_key,
        "finished_at": row.finished_at,
        "outcome": row.status,
        "error_kind": row.error_kind,
        "distro": str(job.get("distro", "")),
        "version": str(job.get("version", "")),
        "target": str(job.get("target", "")),
        "profile": str(job.get("profile", "")),
        "seconds": seconds,
        "manifest_hash": manifest_hash(manifest) if isinstance(manifest, Mapping) else None,
    }


def _insert(session: Session, table: type[Any]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


_recorders: weakref.WeakKeyDictionary[Engine, StatsRecorder] = weakref.WeakKeyDictionary()
_recorders_lock = threading.Lock()


def recorder_for(engine: Engine) -> StatsRecorder:
    """The recorder of ``engine`` (one per engine and process)."""
    with _recorders_lock:
        recorder = _recorders.get(engine)
        if recorder is None:
            recorder = _recorders[engine] = StatsRecorder(session_factory(engine))
        return recorder


__all__ = [
    "BUILD_SECONDS_BUCKETS",
    "StatsRecorder",
    "bucket_label",
    "manifest_hash",
    "recorder_for",
    "requested_names",
    "retention_cutoff",
]
