"""The pure side of reading statistics: parsing what the read script returns, and the series, lists and
totals computed from it (``asud.store.stats_queries`` does the reading).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from asud.store.stats_keys import GroupBy, Period, bucket_start, label

__all__ = [
    "Bucket",
    "Totals",
    "Window",
    "counter",
    "fields",
    "flat_reply",
    "json_list",
    "percentile",
    "targets",
    "top",
]


def json_list(value: Any) -> list[Any]:
    """cjson writes an empty Lua table as ``{}``."""
    return value if isinstance(value, list) else []


def _number(text: Any) -> float:
    value = float(text)
    return int(value) if value.is_integer() else value


def counter(flat: Any) -> Counter[str]:
    items = json_list(flat)
    return Counter({str(items[i]): _number(items[i + 1]) for i in range(0, len(items), 2)})


def top(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(name, int(count)) for name, count in (ranked[:limit] if limit else ranked)]


def fields(counts: Counter[str], prefix: str) -> Counter[str]:
    return Counter({name[len(prefix):]: value for name, value in counts.items() if name.startswith(prefix)})


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` 0.95 → p95); ``None`` for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@attrs.frozen
class Totals:
    """Everything counted since the first event."""

    requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    #: outcome (``done``/``failed``) → builds; outcomes never seen are absent
    builds: dict[str, int] = attrs.field(factory=dict)
    build_seconds_sum: float = 0.0
    #: bucket bound label → builds that took at most that long (cumulative, as Prometheus wants)
    build_buckets: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class Bucket:
    """The counters of one hour or one day read for a window."""

    start: datetime
    period: Period
    counts: Counter[str]


@attrs.frozen
class Window:
    """What one read of ``[since, until)`` found: counters per bucket (hours and days, see the module
    docstring), successful build durations, and the top packages and clients."""

    since: datetime
    until: datetime
    buckets: tuple[Bucket, ...]
    durations: tuple[float, ...]
    packages: Counter[str]
    clients: Counter[str]

    def total(self) -> Counter[str]:
        summed: Counter[str] = Counter()
        for bucket in self.buckets:
            summed.update(bucket.counts)
        return summed

    def series_buckets(self, period: Period) -> list[tuple[datetime, Counter[str]]]:
        """Counters per ``period``: hours only for ``hour`` (days kept only daily are left out, as
        hourly numbers do not exist for them), hours added into their days for ``day``."""
        merged: dict[datetime, Counter[str]] = {}
        for bucket in self.buckets:
            if period == "hour" and bucket.period == "day":
                continue
            merged.setdefault(bucket_start(bucket.start, period), Counter()).update(bucket.counts)
        return sorted(merged.items())

    # -- the series ---------------------------------------------------------------------------------
    def request_series(self, period: Period, by: GroupBy) -> list[dict[str, Any]]:
        """``[{"bucket", "key", "count"}]`` sorted by bucket then key; empty buckets left out."""
        points = []
        for start, counts in self.series_buckets(period):
            if by == "total":
                split = Counter({"total": counts["req"]})
            else:
                split = fields(counts, "v|" if by == "version" else "t|")
            for key, count in sorted(split.items()):
                if count:
                    points.append({"bucket": label(start), "key": key, "count": int(count)})
        return points

    def cache_series(self, period: Period) -> list[dict[str, Any]]:
        """``[{"bucket", "hits", "misses", "rate"}]``."""
        series = []
        for start, counts in self.series_buckets(period):
            hits, misses = int(counts["hit"]), int(counts["miss"])
            if hits + misses:
                series.append({"bucket": label(start), "hits": hits, "misses": misses,
                               "rate": hits / (hits + misses)})
        return series

    def build_series(self, period: Period) -> list[dict[str, Any]]:
        """``[{"bucket", "done", "failed", "mean_seconds"}]``."""
        series = []
        for start, counts in self.series_buckets(period):
            done, failed = int(counts["done"]), int(counts["failed"])
            if done + failed:
                series.append({"bucket": label(start), "done": done, "failed": failed,
                               "mean_seconds": counts["secs"] / (done + failed)})
        return series

    def build_times(self) -> dict[str, Any]:
        """``{"count", "mean", "p95"}`` of successful build durations (seconds)."""
        values = self.durations
        return {
            "count": len(values),
            "mean": sum(values) / len(values) if values else None,
            "p95": percentile(values, 0.95),
        }


def targets(counts: Counter[str], limit: int) -> list[dict[str, Any]]:
    """``[{"target", "count", "build_seconds"}]`` from request and build counters."""
    builds, seconds = fields(counts, "dn|"), fields(counts, "ds|")
    return [
        {"target": target, "count": count,
         "build_seconds": seconds[target] / builds[target] if builds[target] else None}
        for target, count in top(fields(counts, "t|"), limit)
    ]


def flat_reply(reply: Any) -> Counter[str]:
    """An ``HGETALL`` reply (a flat list, or a dict from some clients) as counters."""
    if isinstance(reply, dict):
        return Counter({_text(name): _number(value) for name, value in reply.items()})
    return counter([_text(item) for item in reply or []])


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
