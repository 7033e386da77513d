"""Reading statistics: the ``/api/v1/stats/*`` numbers, the time series of the web stats page, and the
totals ``/metrics`` exposes — from the counters ``asud.store.stats`` keeps (layout: ``stats_keys``).

A window ``[since, until)`` is read in one round-trip (one Lua script returning JSON, so no reply value is
ever mistaken for a number). Each UTC day it touches is read from its daily key when the window covers it
whole (or when it lies before the retention, which keeps only daily numbers), otherwise from the hours
that overlap the window: windows resolve to whole hours. Hourly series and build-time percentiles reach
back as far as the retention; daily series and totals to the first day ever recorded.

    queries = StatsQueries(redis, retention=config.retention.stats)
    series = yield queries.request_series(period="day", by="version", since=start, until=end)
    # [{"bucket": "2026-11-27T00:00:00Z", "key": "24.10.4", "count": 12}, …]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from asud.store import stats_keys as keys
from asud.store.redis import Redis, Script
from asud.store.stats_keys import (
    BUILD_SECONDS_BUCKETS,
    DAY,
    DEFAULT_RETENTION,
    HOUR,
    GroupBy,
    Period,
    bucket_label,
    bucket_start,
    label,
    retention_cutoff,
    utc,
)
from asud.store.stats_window import (
    Bucket,
    Totals,
    Window,
    counter,
    flat_reply,
    json_list,
    percentile,
    targets,
    top,
)

__all__ = ["POPULAR_LIMIT", "Bucket", "StatsQueries", "Totals", "Window", "percentile"]

#: How many entries the "popular" lists return unless told otherwise (the 2017 API's top 50).
POPULAR_LIMIT = 50

_READ = Script(
    """
-- KEYS: hashes, then lists, then the keys of each zset union, then the scratch key
-- ARGV[1]: JSON {"hashes": n, "lists": n, "zsets": [n, ...], "top": limit (0: all)}
local spec = cjson.decode(ARGV[1])
local out = {hashes = {}, lists = {}, zsets = {}}
local i = 1
for h = 1, spec.hashes do out.hashes[h] = redis.call('HGETALL', KEYS[i]); i = i + 1 end
for l = 1, spec.lists do out.lists[l] = redis.call('LRANGE', KEYS[i], 0, -1); i = i + 1 end
local scratch = KEYS[#KEYS]
for z, n in ipairs(spec.zsets) do
  redis.call('DEL', scratch)
  local first = true
  while n > 0 do
    local take = math.min(n, 500)
    local batch = {}
    for k = 1, take do batch[k] = KEYS[i]; i = i + 1 end
    if first then
      redis.call('ZUNIONSTORE', scratch, take, unpack(batch))
      first = false
    else
      redis.call('ZUNIONSTORE', scratch, take + 1, scratch, unpack(batch))
    end
    n = n - take
  end
  -- the top entries and every entry tied with the last of them (the caller orders ties by name)
  local floor = '-inf'
  if spec.top > 0 then
    local nth = redis.call('ZREVRANGE', scratch, spec.top - 1, spec.top - 1, 'WITHSCORES')
    if #nth > 0 then floor = nth[2] end
  end
  out.zsets[z] = redis.call('ZRANGEBYSCORE', scratch, floor, '+inf', 'WITHSCORES')
  redis.call('DEL', scratch)
end
return cjson.encode(out)
"""
)


_NEWEST = Script("return cjson.encode(redis.call('ZREVRANGE', KEYS[1], 0, -1))")


class StatsQueries:
    """Reads for the stats routes, ``/metrics`` and the stats page; every method is one round-trip."""

    def __init__(
        self, redis: Redis, *, retention: float = DEFAULT_RETENTION, clock: IReactorTime | None = None
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self._redis = redis
        self._retention = retention
        self._clock: IReactorTime = clock  # type: ignore[assignment]

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    # -- reading ------------------------------------------------------------------------------------
    def _plan(self, since: datetime, until: datetime, fine: bool) -> list[tuple[datetime, Period]]:
        """The buckets to read for ``[since, until)``: a day whole when the window covers it (and not
        ``fine``) or when only its daily numbers are kept; else its hours overlapping the window."""
        cutoff = retention_cutoff(self.now(), self._retention)
        plan: list[tuple[datetime, Period]] = []
        day = bucket_start(since, "day")
        while day < until:
            covered = since <= day and day + DAY <= until
            if day < cutoff or (covered and not fine):
                plan.append((day, "day"))
            else:
                hour = max(day, bucket_start(since, "hour"))
                while hour < min(day + DAY, until):
                    plan.append((hour, "hour"))
                    hour += HOUR
            day += DAY
        return plan

    def _read(
        self,
        plan: Sequence[tuple[datetime, Period]],
        *,
        lists: bool,
        zsets: Sequence[Sequence[str]],
        top: int,
    ) -> Deferred[Any]:
        bases = [keys.day_key(start) if period == "day" else keys.hour_key(start) for start, period in plan]
        # Durations exist only within the retention; lists of older days may not have expired yet.
        cutoff = retention_cutoff(self.now(), self._retention)
        list_keys = [base + ":durations" for base, (start, _) in zip(bases, plan, strict=True)
                     if lists and start >= cutoff]
        spec = {"hashes": len(bases), "lists": len(list_keys), "zsets": [len(z) for z in zsets], "top": top}
        every = [*bases, *list_keys, *(key for union in zsets for key in union), keys.SCRATCH]
        answer = self._redis.script(_READ, every, [json.dumps(spec)])
        return answer.addCallback(lambda raw: json.loads(raw))

    def window(
        self, since: datetime, until: datetime, *, period: Period = "day", limit: int = POPULAR_LIMIT
    ) -> Deferred[Window]:
        """Everything counted in ``[since, until)``; ``period`` ``hour`` reads hours wherever they are
        kept (for an hourly series), ``day`` whole days where it can. ``limit`` bounds the top lists."""
        since, until = utc(since), utc(until)
        plan = self._plan(since, until, fine=period == "hour")
        bases = [keys.day_key(start) if grain == "day" else keys.hour_key(start) for start, grain in plan]

        def parsed(raw: dict[str, Any]) -> Window:
            hashes, lists, zsets = (json_list(raw.get(name)) for name in ("hashes", "lists", "zsets"))
            buckets = tuple(
                Bucket(start, grain, counter(hashes[i]) if i < len(hashes) else Counter())
                for i, (start, grain) in enumerate(plan)
            )
            durations = tuple(float(value) for values in lists for value in json_list(values))
            packages, clients = (counter(zsets[i]) if i < len(zsets) else Counter() for i in (0, 1))
            return Window(since, until, buckets, durations, packages, clients)

        zsets = [[base + ":packages" for base in bases], [base + ":clients" for base in bases]]
        return self._read(plan, lists=True, zsets=zsets, top=limit).addCallback(parsed)

    def _since(self, since: datetime, limit: int) -> Deferred[Window]:
        """From ``since`` to the end of today."""
        return self.window(since, bucket_start(self.now(), "day") + DAY, limit=limit)

    def _all_time(self, zset: str, limit: int) -> Deferred[list[tuple[str, int]]]:
        answer = self._read([], lists=False, zsets=[[zset]], top=limit)
        return answer.addCallback(lambda raw: top(counter(json_list(raw.get("zsets"))[0]), limit))

    def _total(self) -> Deferred[Counter[str]]:
        answer = self._redis.call("HGETALL", keys.TOTAL)
        return answer.addCallback(flat_reply)

    # -- the series of a window ---------------------------------------------------------------------
    def request_series(
        self, *, period: Period, by: GroupBy, since: datetime, until: datetime
    ) -> Deferred[list[dict[str, Any]]]:
        """Build requests per hour or day, per version, per target or in total:
        ``[{"bucket", "key", "count"}]`` sorted by bucket then key (empty buckets left out)."""
        return self.window(since, until, period=period).addCallback(lambda w: w.request_series(period, by))

    def cache_series(
        self, *, period: Period, since: datetime, until: datetime
    ) -> Deferred[list[dict[str, Any]]]:
        """Cache hits and misses per bucket with the hit rate: ``[{"bucket", "hits", "misses", "rate"}]``."""
        return self.window(since, until, period=period).addCallback(lambda w: w.cache_series(period))

    def build_series(
        self, *, period: Period, since: datetime, until: datetime
    ) -> Deferred[list[dict[str, Any]]]:
        """Finished builds per bucket: ``[{"bucket", "done", "failed", "mean_seconds"}]``."""
        return self.window(since, until, period=period).addCallback(lambda w: w.build_series(period))

    def build_times(self, *, since: datetime, until: datetime) -> Deferred[dict[str, Any]]:
        """``{"count", "mean", "p95"}`` of successful build durations (seconds) in the window."""
        return self.window(since, until).addCallback(lambda w: w.build_times())

    # -- popular lists ------------------------------------------------------------------------------
    def popular_packages(
        self, *, limit: int = POPULAR_LIMIT, since: datetime | None = None
    ) -> Deferred[list[tuple[str, int]]]:
        """``[(package, requests naming it)]``, most requested first (ties by name)."""
        if since is None:
            return self._all_time(keys.PACKAGES, limit)
        return self._since(since, limit).addCallback(lambda w: top(w.packages, limit))

    def popular_clients(
        self, *, limit: int = POPULAR_LIMIT, since: datetime | None = None
    ) -> Deferred[list[tuple[str, int]]]:
        """``[(client, requests)]``, most active first."""
        if since is None:
            return self._all_time(keys.CLIENTS, limit)
        return self._since(since, limit).addCallback(lambda w: top(w.clients, limit))

    def popular_targets(
        self, *, limit: int = POPULAR_LIMIT, since: datetime | None = None
    ) -> Deferred[list[dict[str, Any]]]:
        """``[{"target", "count", "build_seconds"}]``: requests per ``target/subtarget``, most requested
        first, with the mean duration of its successful builds (``None`` when none finished)."""
        counts = self._total() if since is None else self._since(since, limit).addCallback(Window.total)
        return counts.addCallback(targets, limit)

    # -- totals -------------------------------------------------------------------------------------
    def totals(self) -> Deferred[Totals]:
        """Counters over all time."""

        def made(counts: Counter[str]) -> Totals:
            builds = {outcome: int(counts[outcome]) for outcome in ("done", "failed") if counts[outcome]}
            return Totals(
                requests=int(counts["hit"] + counts["miss"]),
                cache_hits=int(counts["hit"]),
                cache_misses=int(counts["miss"]),
                builds=builds,
                build_seconds_sum=float(counts["secs"]),
                build_buckets={
                    bucket_label(bound): int(counts["le|" + bucket_label(bound)])
                    for bound in BUILD_SECONDS_BUCKETS
                },
            )

        return self._total().addCallback(made)

    def timeseries(
        self, *, period: Period, by: GroupBy, since: datetime, until: datetime, limit: int = 10
    ) -> Deferred[dict[str, Any]]:
        """The document of ``GET /api/v1/stats/timeseries``: every series the web stats page draws."""

        def document(window: Window) -> dict[str, Any]:
            return {
                "period": period,
                "by": by,
                "since": label(window.since),
                "until": label(window.until),
                "requests": window.request_series(period, by),
                "cache": window.cache_series(period),
                "builds": window.build_series(period),
                "build_times": window.build_times(),
                "popular_packages": [{"name": n, "count": c} for n, c in top(window.packages, limit)],
                "popular_targets": targets(window.total(), limit),
                "popular_clients": [{"name": n, "count": c} for n, c in top(window.clients, limit)],
            }

        return self.window(since, until, period=period, limit=limit).addCallback(document)

    # -- manifests ----------------------------------------------------------------------------------
    def image_keys_for_manifest(self, digest: str) -> Deferred[list[str]]:
        """Image keys of successful builds (within the retention) whose manifest hashes to ``digest``,
        newest first (``/api/manifest/<hash>`` checks each build record in turn)."""
        answer = self._redis.script(_NEWEST, [keys.manifest_key(digest)], [])
        return answer.addCallback(lambda raw: [str(key) for key in json_list(json.loads(raw))])
