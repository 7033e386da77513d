"""Reading statistics: the legacy ``/api/v1/stats/*`` numbers, time series for the web stats page, and the
totals ``/metrics`` exposes.

Every total is ``stats_daily`` (rolled-up days, kept forever) plus the raw events still kept, so numbers
stay exact across a roll-up. Hourly series and percentiles exist only while the raw events do (the
retention period); daily series reach back to the first day ever recorded.

    sessions = session_factory(engine)
    request_series(sessions, period="day", by="version", since=now - timedelta(days=30), until=now)
    # [{"bucket": "2026-11-27T00:00:00Z", "key": "24.10.4", "count": 12}, …]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sysup.stats.models import BuildEvent, DailyAggregate, RequestedPackage, RequestEvent
from sysup.stats.recorder import BUILD_SECONDS_BUCKETS, bucket_label

Period = Literal["hour", "day"]
GroupBy = Literal["version", "target", "total"]
Sessions = sessionmaker[Session]

#: How many entries the "popular" lists return unless told otherwise (the 2017 API's top 50).
POPULAR_LIMIT = 50


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bucket_start(moment: datetime, period: Period) -> datetime:
    """The start of the hour or (UTC) day holding ``moment``."""
    moment = _utc(moment)
    if period == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _label(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _aggregates(
    session: Session, kind: str, since: datetime | None = None, until: datetime | None = None
) -> list[DailyAggregate]:
    statement = select(DailyAggregate).where(DailyAggregate.kind == kind)
    if since is not None:
        statement = statement.where(DailyAggregate.day >= _utc(since).date())
    if until is not None:
        statement = statement.where(DailyAggregate.day <= _utc(until).date())
    return list(session.scalars(statement).all())


# -- time series for the web page -------------------------------------------------------------------------


def request_series(
    sessions: Sessions, *, period: Period, by: GroupBy, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Build requests per hour or day, per version, per target or in total, between ``since`` and
    ``until``; ``[{"bucket", "key", "count"}]`` sorted by bucket then key (empty buckets left out)."""
    since, until = _utc(since), _utc(until)
    counts: Counter[tuple[datetime, str]] = Counter()
    with sessions() as session:
        rows = session.execute(
            select(RequestEvent.at, RequestEvent.version, RequestEvent.target).where(
                RequestEvent.at >= since, RequestEvent.at < until
            )
        ).all()
        aggregates = _aggregates(session, "request", since, until) if period == "day" else []
    for at, version, target in rows:
        key = version if by == "version" else target if by == "target" else "total"
        counts[(bucket_start(at, period), key)] += 1
    for row in aggregates:
        key = row.version if by == "version" else row.target if by == "target" else "total"
        counts[(_day_start(row.day), key)] += row.count
    return [
        {"bucket": _label(bucket), "key": key, "count": count}
        for (bucket, key), count in sorted(counts.items())
    ]


def cache_series(
    sessions: Sessions, *, period: Period, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Cache hits and misses per bucket with the hit rate: ``[{"bucket", "hits", "misses", "rate"}]``."""
    since, until = _utc(since), _utc(until)
    hits: Counter[datetime] = Counter()
    misses: Counter[datetime] = Counter()
    with sessions() as session:
        rows = session.execute(
            select(RequestEvent.at, RequestEvent.cache_hit).where(
                RequestEvent.at >= since, RequestEvent.at < until
            )
        ).all()
        aggregates = _aggregates(session, "cache", since, until) if period == "day" else []
    for at, hit in rows:
        (hits if hit else misses)[bucket_start(at, period)] += 1
    for row in aggregates:
        (hits if row.name == "hit" else misses)[_day_start(row.day)] += row.count
    series = []
    for bucket in sorted(set(hits) | set(misses)):
        total = hits[bucket] + misses[bucket]
        series.append(
            {
                "bucket": _label(bucket),
                "hits": hits[bucket],
                "misses": misses[bucket],
                "rate": hits[bucket] / total if total else 0.0,
            }
        )
    return series


def build_series(
    sessions: Sessions, *, period: Period, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Finished builds per bucket: ``[{"bucket", "done", "failed", "mean_seconds"}]``."""
    since, until = _utc(since), _utc(until)
    done: Counter[datetime] = Counter()
    failed: Counter[datetime] = Counter()
    seconds: Counter[datetime] = Counter()
    with sessions() as session:
        rows = session.execute(
            select(BuildEvent.finished_at, BuildEvent.outcome, BuildEvent.seconds).where(
                BuildEvent.finished_at >= since, BuildEvent.finished_at < until
            )
        ).all()
        aggregates = _aggregates(session, "build", since, until) if period == "day" else []
    for at, outcome, took in rows:
        bucket = bucket_start(at, period)
        (done if outcome == "done" else failed)[bucket] += 1
        seconds[bucket] += took
    for row in aggregates:
        bucket = _day_start(row.day)
        (done if row.name == "done" else failed)[bucket] += row.count
        seconds[bucket] += row.seconds
    series = []
    for bucket in sorted(set(done) | set(failed)):
        total = done[bucket] + failed[bucket]
        series.append(
            {
                "bucket": _label(bucket),
                "done": done[bucket],
                "failed": failed[bucket],
                "mean_seconds": seconds[bucket] / total if total else 0.0,
            }
        )
    return series


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` 0.95 → p95); ``None`` for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def build_times(sessions: Sessions, *, since: datetime, until: datetime) -> dict[str, Any]:
    """``{"count", "mean", "p95"}`` of successful build durations (seconds) between ``since`` and
    ``until``, from the raw events (percentiles need them)."""
    with sessions() as session:
        values = session.scalars(
            select(BuildEvent.seconds).where(
                BuildEvent.outcome == "done",
                BuildEvent.finished_at >= _utc(since),
                BuildEvent.finished_at < _utc(until),
            )
        ).all()
    return {
        "count": len(values),
        "mean": sum(values) / len(values) if values else None,
        "p95": percentile(values, 0.95),
    }


# -- popular lists ----------------------------------------------------------------------------------------


def popular_packages(
    sessions: Sessions, *, limit: int = POPULAR_LIMIT, since: datetime | None = None
) -> list[tuple[str, int]]:
    """``[(package, requests naming it)]``, most requested first (ties by name)."""
    counts: Counter[str] = Counter()
    with sessions() as session:
        statement = select(RequestedPackage.name, func.count()).group_by(RequestedPackage.name)
        if since is not None:
            statement = statement.join(RequestEvent, RequestEvent.id == RequestedPackage.request_id).where(
                RequestEvent.at >= _utc(since)
            )
        counts.update(dict(session.execute(statement).all()))
        for row in _aggregates(session, "package", since):
            counts[row.name] += row.count
    return _top(counts, limit)


def popular_clients(
    sessions: Sessions, *, limit: int = POPULAR_LIMIT, since: datetime | None = None
) -> list[tuple[str, int]]:
    """``[(client, requests)]``, most active first."""
    counts: Counter[str] = Counter()
    with sessions() as session:
        statement = select(RequestEvent.client, func.count()).group_by(RequestEvent.client)
        if since is not None:
            statement = statement.where(RequestEvent.at >= _utc(since))
        counts.update(dict(session.execute(statement).all()))
        for row in _aggregates(session, "request", since):
            counts[row.name] += row.count
    return _top(counts, limit)


def popular_targets(
    sessions: Sessions, *, limit: int = POPULAR_LIMIT, since: datetime | None = None
) -> list[dict[str, Any]]:
    """``[{"target", "count", "build_seconds"}]``: requests per ``target/subtarget``, most requested first,
    with the mean duration of its successful builds (``None`` when none finished)."""
    counts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    builds: Counter[str] = Counter()
    with sessions() as session:
        statement = select(RequestEvent.target, func.count()).group_by(RequestEvent.target)
        build_statement = (
            select(BuildEvent.target, func.count(), func.sum(BuildEvent.seconds))
            .where(BuildEvent.outcome == "done")
            .group_by(BuildEvent.target)
        )
        if since is not None:
            statement = statement.where(RequestEvent.at >= _utc(since))
            build_statement = build_statement.where(BuildEvent.finished_at >= _utc(since))
        counts.update(dict(session.execute(statement).all()))
        for target, count, total in session.execute(build_statement).all():
            builds[target] += count
            seconds[target] += float(total or 0.0)
        for row in _aggregates(session, "request", since):
            counts[row.target] += row.count
        for row in _aggregates(session, "build", since):
            if row.name == "done":
                builds[row.target] += row.count
                seconds[row.target] += row.seconds
    return [
        {
            "target": target,
            "count": count,
            "build_seconds": seconds[target] / builds[target] if builds[target] else None,
        }
        for target, count in _top(counts, limit)
    ]


def _top(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


# -- totals (/metrics, /api/v1/stats/images) ----------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Everything counted since the first event, roll-ups included."""

    requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    #: outcome (``done``/``failed``) → builds
    builds: dict[str, int] = field(default_factory=dict)
    build_seconds_sum: float = 0.0
    #: bucket bound label → builds that took at most that long (cumulative, as Prometheus wants)
    build_buckets: dict[str, int] = field(default_factory=dict)


def totals(sessions: Sessions) -> Totals:
    """Counters over all time (aggregates + raw events)."""
    with sessions() as session:
        hits = dict(
            session.execute(
                select(RequestEvent.cache_hit, func.count()).group_by(RequestEvent.cache_hit)
            ).all()
        )
        outcomes = session.execute(
            select(BuildEvent.outcome, func.count(), func.sum(BuildEvent.seconds)).group_by(
                BuildEvent.outcome
            )
        ).all()
        durations = session.scalars(select(BuildEvent.seconds)).all()
        cache_rows = _aggregates(session, "cache")
        build_rows = _aggregates(session, "build")
        bucket_rows = _aggregates(session, "build_le")
    cache_hits = hits.get(True, 0) + sum(row.count for row in cache_rows if row.name == "hit")
    cache_misses = hits.get(False, 0) + sum(row.count for row in cache_rows if row.name == "miss")
    builds: Counter[str] = Counter()
    build_seconds = 0.0
    for outcome, count, total in outcomes:
        builds[outcome] += count
        build_seconds += float(total or 0.0)
    for row in build_rows:
        builds[row.name] += row.count
        build_seconds += row.seconds
    buckets: Counter[str] = Counter()
    for bound in BUILD_SECONDS_BUCKETS:
        buckets[bucket_label(bound)] += sum(1 for took in durations if took <= bound)
    for row in bucket_rows:
        buckets[row.name] += row.count
    return Totals(
        requests=cache_hits + cache_misses,
        cache_hits=cache_hits,
        cache_misses=cache_misses,
        builds=dict(builds),
        build_seconds_sum=build_seconds,
        build_buckets={bucket_label(bound): buckets[bucket_label(bound)] for bound in BUILD_SECONDS_BUCKETS},
    )


def timeseries(
    sessions: Sessions, *, period: Period, by: GroupBy, since: datetime, until: datetime, limit: int = 10
) -> dict[str, Any]:
    """The document of ``GET /api/v1/stats/timeseries``: every series the web stats page draws."""
    return {
        "period": period,
        "by": by,
        "since": _label(_utc(since)),
        "until": _label(_utc(until)),
        "requests": request_series(sessions, period=period, by=by, since=since, until=until),
        "cache": cache_series(sessions, period=period, since=since, until=until),
        "builds": build_series(sessions, period=period, since=since, until=until),
        "build_times": build_times(sessions, since=since, until=until),
        "popular_packages": [
            {"name": name, "count": count}
            for name, count in popular_packages(sessions, limit=limit, since=since)
        ],
        "popular_targets": popular_targets(sessions, limit=limit, since=since),
        "popular_clients": [
            {"name": name, "count": count}
            for name, count in popular_clients(sessions, limit=limit, since=since)
        ],
    }


__all__ = [
    "POPULAR_LIMIT",
    "Totals",
    "bucket_start",
    "build_series",
    "build_times",
    "cache_series",
    "percentile",
    "popular_clients",
    "popular_packages",
    "popular_targets",
    "request_series",
    "timeseries",
    "totals",
]
