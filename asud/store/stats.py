"""Writing statistics: every accepted build request and every finished build, as Redis counters.

One event is one Lua script (``EVALSHA``): one round-trip that updates the all-time, daily and hourly
counters atomically (key layout: ``asud.store.stats_keys``). That is why sysup's in-memory buffer of
cache-hit POST statistics (a batch per half second, to avoid a SQL transaction per answer) is gone: the
hot path now spends one asynchronous round-trip that it need not even wait for, and nothing is held in
memory that a crash could lose.

Recording never fails a request: a refused or timed-out write is logged, counted in ``dropped``, and its
Deferred fires ``False``. Beyond ``max_pending`` writes in flight (a Redis that stopped answering) new
events are dropped at once instead of piling up. :meth:`StatsRecorder.flush` waits for the writes in
flight (the daemon calls it on stop).

    recorder = StatsRecorder(redis, retention=config.retention.stats)
    recorder.record_validated(validated, api="v1", client="luci/git-24.10", cache_hit=False)
    recorder.record_build("4f…", outcome="done", job=job, started_at=t0, finished_at=t1, result=result)
    recorder.record_finished(build_record)  # the same, from what BuildRecords.done/failed return
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

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

__all__ = ["MAX_PENDING", "StatsRecorder", "manifest_hash", "requested_names"]

log = Logger()

#: Writes in flight beyond which new events are dropped (a Redis that stopped answering).
MAX_PENDING = 10_000
#: Longest client name and package name kept.
MAX_CLIENT = 256
MAX_PACKAGE = 128

_REQUEST = Script(
    """
-- KEYS: total, all-time packages, all-time clients, day hash, day packages, day clients,
--       hour hash, hour packages, hour clients
-- ARGV: hour keys' ttl (<= 0: not kept), api, client, version, target, hit 1/0, defaults 1/0, names...
local ttl = tonumber(ARGV[1])
local hit = ARGV[6] == '1'
local function count(hash, packages, clients)
  redis.call('HINCRBY', hash, 'req', 1)
  redis.call('HINCRBY', hash, hit and 'hit' or 'miss', 1)
  redis.call('HINCRBY', hash, 'v|' .. ARGV[4], 1)
  redis.call('HINCRBY', hash, 't|' .. ARGV[5], 1)
  redis.call('HINCRBY', hash, 'api|' .. ARGV[2], 1)
  if ARGV[7] == '1' then redis.call('HINCRBY', hash, 'defaults', 1) end
  redis.call('ZINCRBY', clients, 1, ARGV[3])
  for i = 8, #ARGV do redis.call('ZINCRBY', packages, 1, ARGV[i]) end
end
count(KEYS[1], KEYS[2], KEYS[3])
count(KEYS[4], KEYS[5], KEYS[6])
if ttl > 0 then
  count(KEYS[7], KEYS[8], KEYS[9])
  for i = 7, 9 do redis.call('EXPIRE', KEYS[i], ttl) end
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
    """Records events into Redis; every ``record_*`` returns a Deferred that fires ``True`` when stored and
    ``False`` when not (it never fails). Callers on a hot path need not wait for it."""

    def __init__(
        self,
        redis: Redis,
        *,
        retention: float = DEFAULT_RETENTION,
        clock: IReactorTime | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self._redis = redis
        self._retention = retention
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        self._max_pending = max_pending
        self._pending: set[Deferred[bool]] = set()
        #: Events not stored: refused by Redis, timed out, or over ``max_pending``.
        self.dropped = 0

    def now(self) -> datetime:
        return _moment(self._clock.seconds())

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
    ) -> Deferred[bool]:
        """Count one accepted request (v1 ``api="v1"``, 2017 ``"build-request"``/``"upgrade-request"``):
        its client, version, target, the packages it names (never a ``defaults`` script, only whether it
        had one), and whether it was a cache hit. ``distro``, ``profile`` and ``request_hash`` are taken
        for the record's completeness but not counted (no statistic reads them)."""
        now = self.now()
        moment = keys.utc(at) if at is not None else now
        hour = bucket_start(moment, "hour")
        names = [name[:MAX_PACKAGE] for name in requested_names(packages)]
        script_keys = [
            keys.TOTAL, keys.PACKAGES, keys.CLIENTS,
            keys.day_key(moment), keys.day_key(moment) + ":packages", keys.day_key(moment) + ":clients",
            keys.hour_key(hour), keys.hour_key(hour) + ":packages", keys.hour_key(hour) + ":clients",
        ]
        args: list[str | int | float] = [
            keep_seconds(moment, now, self._retention), api, (client or "unknown")[:MAX_CLIENT],
            version, target, "1" if cache_hit else "0", "1" if has_defaults else "0", *names,
        ]
        return self._write(_REQUEST, script_keys, args, "a build request")

    def record_validated(
        self, validated: Any, *, api: str, client: str | None, cache_hit: bool
    ) -> Deferred[bool]:
        """:meth:`record_request` for an ``asud.build.validate.ValidatedRequest``."""
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

    def flush(self) -> Deferred[None]:
        """Fires when every write in flight has been stored or dropped."""
        waiting = list(self._pending)
        return DeferredList(waiting).addCallback(lambda _: None)  # type: ignore[arg-type]

    def pending(self) -> int:
        return len(self._pending)
