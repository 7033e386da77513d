"""Where statistics live in Redis, and the pure rules both the recorder and the queries follow.

Every number is a counter, kept at three grains (all written by one Lua script — per finished build, and
per flush of the request counters the recorder sums in memory — so they always agree):

==================================  ======  ==========================================================
key                                 type    holds
==================================  ======  ==========================================================
``asud:stats:total``                hash    all-time counters (fields below, plus ``le|<bound>``)
``asud:stats:packages``             zset    all-time: package name → requests naming it
``asud:stats:clients``              zset    all-time: client → requests
``asud:stats:d:<YYYY-MM-DD>``       hash    one UTC day's counters (kept forever)
``asud:stats:d:<day>:packages``     zset    that day's package counts (kept forever)
``asud:stats:d:<day>:clients``      zset    that day's client counts (kept forever)
``asud:stats:d:<day>:durations``    list    that day's successful build durations (expires: retention)
``asud:stats:h:<YYYY-MM-DDTHH>``    hash    one UTC hour's counters (expires: retention)
``asud:stats:h:<hour>:packages``    zset    (expires: retention)
``asud:stats:h:<hour>:clients``     zset    (expires: retention)
``asud:stats:h:<hour>:durations``   list    (expires: retention)
``asud:stats:manifest:<sha256>``    zset    image keys built with that manifest, scored by finish time
                                            (expires: retention; ``/api/manifest/<hash>``)
``asud:stats:seen:<key>:<finish>``  string  a build already counted (``record_build`` is idempotent)
==================================  ======  ==========================================================

Counter fields of the total, day and hour hashes: ``req``, ``hit``, ``miss``, ``defaults``, ``v|<version>``,
``t|<target>``, ``api|<api>`` (requests); ``done``, ``failed``, ``secs`` (summed seconds of every finished
build), ``dn|<target>`` and ``ds|<target>`` (successful builds of a target and their summed seconds),
``err|<kind>`` (builds). The total hash adds ``le|<bound>``: builds that took at most that long.

Retention (``config.retention.stats``) replaces sysup's roll-up: the hour keys and the duration lists of a
day expire when that day falls before :func:`retention_cutoff`, exactly when sysup rolled its raw events up
into daily aggregates. So hourly series and percentiles reach back as far as the retention, daily series
and every total forever — as before, with no job that has to run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Literal

__all__ = [
    "BUILD_SECONDS_BUCKETS",
    "DEFAULT_RETENTION",
    "GroupBy",
    "Period",
    "bucket_label",
    "bucket_start",
    "day_key",
    "hour_key",
    "keep_seconds",
    "label",
    "manifest_hash",
    "requested_names",
    "retention_cutoff",
    "utc",
]

PREFIX = "asud:stats"
TOTAL = f"{PREFIX}:total"
PACKAGES = f"{PREFIX}:packages"
CLIENTS = f"{PREFIX}:clients"
#: Scratch key of the read script (made and deleted inside one script, so never seen by anyone).
SCRATCH = f"{PREFIX}:scratch"

#: Upper bounds (seconds) of the build-duration histogram (``/metrics``, ``le|<bound>`` of the total).
BUILD_SECONDS_BUCKETS: tuple[float, ...] = (5, 10, 30, 60, 120, 300, 600, 1800)
#: ``config.retention.stats``'s default: 90 days.
DEFAULT_RETENTION = 90 * 86400.0

Period = Literal["hour", "day"]
GroupBy = Literal["version", "target", "total"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


# -- pure rules ---------------------------------------------------------------------------------------------


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


def bucket_label(bound: float) -> str:
    """``5`` → ``"5"``, ``0.5`` → ``"0.5"``: how a bucket bound is written in fields and ``le``."""
    return f"{bound:g}"


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive time is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def bucket_start(moment: datetime, period: Period) -> datetime:
    """The start of the hour or (UTC) day holding ``moment``."""
    moment = utc(moment)
    if period == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def label(moment: datetime) -> str:
    """``2026-11-27T13:00:00Z``: how buckets and windows are written in answers."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def retention_cutoff(now: datetime, retention: timedelta | float) -> datetime:
    """Midnight (UTC) of the first day whose hourly numbers are still kept."""
    span = retention if isinstance(retention, timedelta) else timedelta(seconds=retention)
    day = (utc(now) - span).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def keep_seconds(moment: datetime, now: datetime, retention: float) -> int:
    """How long the hourly keys of ``moment``'s day must live from ``now``: until that day falls before
    :func:`retention_cutoff` (0 or less: it already has, its hourly numbers are not kept)."""
    day_end = bucket_start(moment, "day") + DAY
    return int((day_end + timedelta(seconds=retention) - utc(now)).total_seconds())


def day_key(day: date | datetime) -> str:
    return f"{PREFIX}:d:{day.strftime('%Y-%m-%d')}"


def hour_key(hour: datetime) -> str:
    return f"{PREFIX}:h:{utc(hour).strftime('%Y-%m-%dT%H')}"


def manifest_key(digest: str) -> str:
    return f"{PREFIX}:manifest:{digest}"


def seen_key(image_key: str, finished_at: float) -> str:
    return f"{PREFIX}:seen:{image_key}:{finished_at!r}"
