"""Writing statistics: every accepted build request and every finished build, as Redis counters.

Requests are counted **in memory** and written in batches: :meth:`StatsRecorder.record_request` adds one
to the counter of its (hour, api, client, version, target, hit, defaults, packages) tuple — a dictionary
update, no I/O — and a flush, about once a second and when the daemon stops, writes every counter with
one Lua script (``EVALSHA``) that updates the all-time, daily and hourly counters atomically (key layout:
``asud.store.stats_keys``). A cache-hit POST answered at the speed of a bare ``Resource`` could not afford
a Redis round trip of its own (it was a quarter of the daemon's time under load); sysup buffered its
cache-hit statistics for the same reason. Readers see the same numbers as before once a flush happened;
a daemon killed outright (not stopped) loses at most the last second's request counts.

Memory is bounded: at most ``max_entries`` distinct tuples wait. Reaching the bound starts a flush at
once; a request that finds no room (a flush already under way, or Redis away) is counted in ``dropped``.
While Redis is unreachable a flush keeps its counts (within the same bound) and the next tick retries;
the outage is logged once, and its end once. A write Redis refuses (a script error, a wrong key type)
is not retried: its requests are counted in ``dropped``.

Finished builds (a few a minute) are still one script each, written at once; beyond ``max_pending``
build writes in flight new ones are dropped. Recording never fails or slows a request.

    recorder = StatsRecorder(redis, retention=config.retention.stats)
    recorder.start()                        # the flush timer (the service tree's clean-up part does it)
    recorder.record_validated(validated, api="v1", client="luci/git-24.10", cache_hit=False)
    recorder.record_build("4f…", outcome="done", job=job, started_at=t0, finished_at=t1, result=result)
    recorder.record_finished(build_record)  # the same, from what BuildRecords.done/failed return
    await recorder.stop()                   # no more ticks; everything counted is written
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.errors import Unavailable
from asud.store import stats_keys as keys
from asud.store.redis import Redis, Script
from asud.store.stats_keys import (
    BUILD_SECONDS_BUCKETS,
    DEFAULT_RETENTION,
    bucket_label,
    bucket_start,
    keep_seconds,
    manifest_hash,
    requested_names,
)

__all__ = ["FLUSH_INTERVAL", "MAX_ENTRIES", "MAX_PENDING", "StatsRecorder", "manifest_hash",
           "requested_names"]

log = Logger()

#: Build writes in flight beyond which new ones are dropped (a Redis that stopped answering).
MAX_PENDING = 10_000
#: Distinct request tuples counted in memory at most (a flush writes them all).
MAX_ENTRIES = 10_000
#: Seconds between flushes of the request counters.
FLUSH_INTERVAL = 1.0
#: Longest client name and package name kept.
MAX_CLIENT = 256
MAX_PACKAGE = 128

#: What one request is counted under: hour (seconds since the epoch // 3600), api, client, version,
#: target, cache hit, had defaults, packages as asked for (names are worked out at the flush).
_RequestKey = tuple[int, str, str | None, str, str, bool, bool, tuple[str, ...]]

_COUNTS = Script(
    """
-- KEYS: hashes and sorted sets to count into
-- ARGV: for each key, in order: kind ('h' hash, 'z' sorted set), ttl (<= 0: none), number of pairs n,
--       then n pairs (field or member, increment)
local a = 1
for i = 1, #KEYS do
  local key, kind, ttl, n = KEYS[i], ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  for _ = 1, n do
    if kind == 'h' then
      redis.call('HINCRBY', key, ARGV[a], ARGV[a + 1])
    else
      redis.call('ZINCRBY', key, ARGV[a + 1], ARGV[a])
    end
    a = a + 2
  end
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
end
return 1
"""
)

_BUILD = Script(
    """
-- KEYS: total, day hash, day durations, hour hash, hour durations, seen marker, manifest zset (or '')
-- ARGV: ttl, outcome, seconds, target, error kind (or ''), image key, finished at, le labels...
local ttl = tonumber(ARGV[1])
if ttl <= 0 then return 0 end
if not redis.call('SET', KEYS[6], '1', 'NX', 'EX', ttl) then return 0 end
local done = ARGV[2] == 'done'
local function count(hash)
  redis.call('HINCRBY', hash, ARGV[2], 1)
  redis.call('HINCRBYFLOAT', hash, 'secs', ARGV[3])
  if done then
    redis.call('HINCRBY', hash, 'dn|' .. ARGV[4], 1)
    redis.call('HINCRBYFLOAT', hash, 'ds|' .. ARGV[4], ARGV[3])
  end
  if ARGV[5] ~= '' then redis.call('HINCRBY', hash, 'err|' .. ARGV[5], 1) end
end
count(KEYS[1])
for i = 8, #ARGV do redis.call('HINCRBY', KEYS[1], 'le|' .. ARGV[i], 1) end
count(KEYS[2])
count(KEYS[4])
redis.call('EXPIRE', KEYS[4], ttl)
if done then
  for _, list in ipairs({KEYS[3], KEYS[5]}) do
    redis.call('RPUSH', list, ARGV[3])
    redis.call('EXPIRE', list, ttl)
  end
end
if KEYS[7] ~= '' and done then
  redis.call('ZADD', KEYS[7], ARGV[7], ARGV[6])
  redis.call('EXPIRE', KEYS[7], ttl)
end
return 1
"""
)


def _epoch(moment: datetime | float | None) -> float | None:
    if moment is None or isinstance(moment, int | float):
        return moment
    return keys.utc(moment).timestamp()


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class StatsRecorder:
    """Records events into Redis, never failing and never slowing the caller: requests are counted in
    memory and written by :meth:`flush` (every ``interval`` seconds after :meth:`start`, and by
    :meth:`stop`); a finished build is written at once (``record_build``'s Deferred fires ``True`` when
    stored, ``False`` when not)."""

    def __init__(
        self,
        redis: Redis,
        *,
        retention: float = DEFAULT_RETENTION,
        clock: IReactorTime | None = None,
        max_pending: int = MAX_PENDING,
        max_entries: int = MAX_ENTRIES,
        interval: float = FLUSH_INTERVAL,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self._redis = redis
        self._retention = retention
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        self._max_pending = max_pending
        self._max_entries = max_entries
        self._interval = interval
        self._pending: set[Deferred[bool]] = set()
        #: Requests counted and not yet written, by what they are counted under.
        self._counts: dict[_RequestKey, int] = {}
        #: Requests in the batch being written, and who waits for that write (``None``: no write).
        self._writing = 0
        self._waiting: list[Deferred[bool]] | None = None
        self._timer: LoopingCall | None = None
        #: True from a flush that found Redis away until one that wrote (the outage is logged once).
        self._away = False
        #: Events not stored: refused by Redis, no room in memory, or (builds) timed out.
        self.dropped = 0

    def now(self) -> datetime:
        return _moment(self._clock.seconds())

    # -- the flush timer ----------------------------------------------------------------------------
    def start(self) -> None:
        """Flush every ``interval`` seconds from now on (the daemon starts this with its service tree)."""
        if self._timer is None:
            self._timer = LoopingCall(self._tick)
            self._timer.clock = self._clock
            self._timer.start(self._interval, now=False)

    def stop(self) -> Deferred[bool]:
        """No more ticks; fires as :meth:`flush` does once everything counted has been written (what a
        stopping daemon waits for, so a SIGTERM loses nothing Redis can take)."""
        timer, self._timer = self._timer, None
        if timer is not None and timer.running:
            timer.stop()
        return self.flush()

    def _tick(self) -> None:
        if self._counts and self._waiting is None:
            self._write_counts()

    # -- requests -----------------------------------------------------------------------------------
    def record_request(
        self,
        *,
        api: str,
        client: str | None,
        distro: str,
        version: str,
        target: str,
        profile: str,
        request_hash: str,
        packages: Iterable[str],
        has_defaults: bool,
        cache_hit: bool,
        at: datetime | None = None,
    ) -> None:
        """Count one accepted request (v1 ``api="v1"``, 2017 ``"build-request"``/``"upgrade-request"``):
        its client, version, target, the packages it names (never a ``defaults`` script, only whether it
        had one), and whether it was a cache hit. ``distro``, ``profile`` and ``request_hash`` are taken
        for the record's completeness but not counted (no statistic reads them).

        Counted in memory only, at the cost of a dictionary update: it is in Redis after the next
        :meth:`flush` (``await recorder.flush()`` to read it back at once)."""
        seconds = self._clock.seconds() if at is None else keys.utc(at).timestamp()
        key = (int(seconds // 3600), api, client, version, target, cache_hit, has_defaults, tuple(packages))
        counts = self._counts
        count = counts.get(key)
        if count is not None:
            counts[key] = count + 1
            return
        if len(counts) >= self._max_entries:
            if self._waiting is not None or self._away:
                self.dropped += 1  # no room until the write under way (or Redis) comes back
                return
            self._write_counts()  # takes every counter out: room again
            counts = self._counts
        counts[key] = 1

    def record_validated(self, validated: Any, *, api: str, client: str | None, cache_hit: bool) -> None:
        """:meth:`record_request` for an ``asud.build.validate.ValidatedRequest``."""
        request = validated.request
        self.record_request(
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

    def flush(self) -> Deferred[bool]:
        """Write every request counted so far, and wait for the build writes in flight; fires ``True``
        when the requests were stored, ``False`` when not (Redis away: kept for the next tick; refused:
        dropped). Never fails."""
        builds = DeferredList(list(self._pending))  # type: ignore[arg-type]
        requests = self._write_counts()
        return builds.addCallback(lambda _: requests)

    def pending(self) -> int:
        """Events not written yet: requests counted or being written, build writes in flight."""
        return sum(self._counts.values()) + self._writing + len(self._pending)

    def _write_counts(self) -> Deferred[bool]:
        """One script call with every counter; one at a time (a call made during a write waits for it,
        then writes what came since — unless that write failed)."""
        if self._waiting is not None:
            after: Deferred[bool] = Deferred()
            self._waiting.append(after)
            return after.addCallback(lambda ok: self._write_counts() if ok else False)
        if not self._counts:
            return succeed(True)
        batch, self._counts = self._counts, {}
        self._writing = sum(batch.values())
        waiting: list[Deferred[bool]] = []
        self._waiting = waiting

        def written(_: Any) -> bool:
            if self._away:
                self._away = False
                log.info("statistics written to Redis again")
            return True

        def failed(failure: Failure) -> bool:
            if failure.check(Unavailable, CancelledError):
                self._keep(batch)
                if not self._away:
                    self._away = True
                    log.warn("statistics not written ({why}): counts kept in memory and retried every "
                             "{interval:g} s", why=failure.getErrorMessage(), interval=self._interval)
            else:
                self.dropped += sum(batch.values())
                log.failure("could not record build requests in the statistics", failure)
            return False

        def settled(ok: bool) -> bool:
            self._writing = 0
            self._waiting = None
            for after in waiting:
                after.callback(ok)
            return ok

        try:
            script_keys, args = self._encode(batch)
            sent = self._redis.script(_COUNTS, script_keys, args)
        except Exception:
            sent = fail(Failure())
        return sent.addCallbacks(written, failed).addCallback(settled)

    def _keep(self, batch: dict[_RequestKey, int]) -> None:
        """Put an unwritten batch back (merged with what came since), as far as ``max_entries`` allows."""
        counts = self._counts
        for key, count in batch.items():
            if key in counts:
                counts[key] += count
            elif len(counts) < self._max_entries:
                counts[key] = count
            else:
                self.dropped += count

    def _encode(self, batch: Mapping[_RequestKey, int]) -> tuple[list[str], list[str | int | float]]:
        """The counters of ``batch`` as ``_COUNTS`` takes them: each hash field and sorted-set member
        summed over the batch, the hour keys' ttl from now (hours already past the retention: not kept)."""
        now = self.now()
        hashes: defaultdict[str, Counter[str]] = defaultdict(Counter)
        zsets: defaultdict[str, Counter[str]] = defaultdict(Counter)
        ttls: dict[str, int] = {}
        for (hour, api, client, version, target, hit, defaults, packages), count in batch.items():
            moment = _moment(hour * 3600.0)
            day = keys.day_key(moment)
            grains = [(keys.TOTAL, keys.PACKAGES, keys.CLIENTS), (day, f"{day}:packages", f"{day}:clients")]
            ttl = keep_seconds(moment, now, self._retention)
            if ttl > 0:
                hour_key = keys.hour_key(moment)
                grain = (hour_key, f"{hour_key}:packages", f"{hour_key}:clients")
                grains.append(grain)
                ttls.update(dict.fromkeys(grain, ttl))
            fields = ["req", "hit" if hit else "miss", f"v|{version}", f"t|{target}", f"api|{api}"]
            if defaults:
                fields.append("defaults")
            name = (client or "unknown")[:MAX_CLIENT]
            names = [package[:MAX_PACKAGE] for package in requested_names(packages)]
            for hash_key, packages_key, clients_key in grains:
                counters = hashes[hash_key]
                for field in fields:
                    counters[field] += count
                zsets[clients_key][name] += count
                if names:
                    counted = zsets[packages_key]
                    for package in names:
                        counted[package] += count
        script_keys: list[str] = []
        args: list[str | int | float] = []
        for kind, counters_of in (("h", hashes), ("z", zsets)):
            for key, counters in counters_of.items():
                script_keys.append(key)
                args += [kind, ttls.get(key, 0), len(counters)]
                for member, count in counters.items():
                    args += [member, count]
        return script_keys, args

    # -- builds -------------------------------------------------------------------------------------
    def record_build(
        self,
        image_key: str,
        *,
        outcome: str,
        job: Mapping[str, Any],
        started_at: datetime | float | None,
        finished_at: datetime | float | None = None,
        result: Mapping[str, Any] | None = None,
        error_kind: str | None = None,
    ) -> Deferred[bool]:
        """Count one finished build (``outcome`` ``done`` or ``failed``) of ``job`` (its ``target`` is
        used): its duration from the worker's start to ``finished_at`` (default now), the manifest of a
        successful ``result`` (for ``/api/manifest/<hash>``), the error kind of a failure. Counting the
        same build (image key and finish time) again, or one finished before the retention, stores
        nothing (``False``), as sysup's collection did."""
        now = self.now()
        finished = _epoch(finished_at)
        if finished is None:
            finished = self._clock.seconds()
        started = _epoch(started_at)
        seconds = max(0.0, finished - started) if started is not None else 0.0
        moment = _moment(finished)
        hour = bucket_start(moment, "hour")
        manifest = (result or {}).get("manifest") if outcome == "done" else None
        digest = manifest_hash(manifest) if isinstance(manifest, Mapping) else None
        script_keys = [
            keys.TOTAL,
            keys.day_key(moment), keys.day_key(moment) + ":durations",
            keys.hour_key(hour), keys.hour_key(hour) + ":durations",
            keys.seen_key(image_key, finished),
            keys.manifest_key(digest) if digest else "",
        ]
        args: list[str | int | float] = [
            keep_seconds(moment, now, self._retention), outcome, repr(seconds), str(job.get("target", "")),
            error_kind or "", image_key, repr(finished),
            *(bucket_label(bound) for bound in BUILD_SECONDS_BUCKETS if seconds <= bound),
        ]
        return self._write(_BUILD, script_keys, args, "a finished build")

    def record_finished(self, record: Any) -> Deferred[bool]:
        """:meth:`record_build` for a finished ``asud.store.records.BuildRecord`` (what ``done`` and
        ``failed`` return): timed from its start (or, never started, its arrival in the queue)."""
        return self.record_build(
            record.image_key,
            outcome=str(getattr(record.status, "value", record.status)),
            job=record.job or {},
            started_at=record.started_at if record.started_at is not None else record.queued_at,
            finished_at=record.finished_at,
            result=record.result,
            error_kind=record.error_kind,
        )

    # -- writing ------------------------------------------------------------------------------------
    def _write(
        self, script: Script, script_keys: list[str], args: list[str | int | float], what: str
    ) -> Deferred[bool]:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            return succeed(False)

        def stored(reply: Any) -> bool:
            return bool(int(reply))

        def refused(failure: Failure) -> bool:
            self.dropped += 1
            log.failure("could not record {what} in the statistics", failure, what=what)
            return False

        def settled(ok: bool) -> bool:
            self._pending.discard(written)
            return ok

        try:
            sent = self._redis.script(script, script_keys, args)
            written: Deferred[bool] = sent.addCallbacks(stored, refused)
        except Exception:
            return succeed(refused(Failure()))
        self._pending.add(written)
        written.addCallback(settled)
        return written
