"""Build records in Redis: what the API submits and reads, and what the build pool writes as it works.

Two keys (DESIGN.md decision 10): a *request* record per request hash (what this client asked, echoed in
every answer, and the image key it maps to) and a *build* record per image key (one build, its life and
its result). Many requests share one build. Key layout (all strings are UTF-8; times are Unix seconds):

==========================  ======  ==================================================================
``asud:request:<hash>``     hash    ``request_hash``, ``image_key``, ``request`` (JSON echo), ``client``,
                                    ``enqueued_at``; expires ``REQUEST_KEEP_SECONDS`` after its last POST
``asud:build:<image key>``  hash    :class:`BuildRecord`'s fields; no expiry while queued or started;
                                    finished: expires ``stale_keep`` seconds after ``expires_at``
``asud:queued``             zset    image keys of queued builds, scored by arrival (``asud:seq``):
                                    ``ZRANK`` is the queue position, ``ZCARD`` the queue length
``asud:queued:clients``     hash    client → number of its queued builds (``max_pending_per_client``)
``asud:bin_dirs``           zset    bin_dir → until when its files are served (``+inf`` while pending)
``asud:queue``              stream  one entry per queued build (``asud.build.queue``)
==========================  ======  ==================================================================

**One build per image key, under any concurrency.** Every change of a build record is one Lua script, and
Redis runs scripts one at a time: ``submit`` reads the build record, checks the queue limits, creates the
record (or turns a stale finished one back into a queued build), adds the stream entry, counts the
client's queued builds and maps the request — all or nothing, in one round trip. A ``SET NX`` lock would
decide the winner too, but the record, the counters and the stream entry would then be written in later
steps that a dying daemon could leave half done; a script leaves nothing to repair. A hundred concurrent
identical submits therefore make one record and one stream entry, and a stale result is rebuilt once.
(Scripts derive key names from the image key, so this is for one Redis server, not Redis Cluster.)

**The node writes.** ``started`` records which node builds it; ``stage``, ``done`` and ``failed`` change
the record only while it is started *by that node*, so a daemon that lost its lease (its entry was claimed
by another after ``[build] lease_timeout``) cannot overwrite the new builder's record.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from asud.build.queue import QUEUE_KEY
from asud.build.stages import BuildStage, BuildStatus
from asud.config import Config, RetentionSettings
from asud.errors import AsudError, BuildError, Overloaded, RateLimited
from asud.store import record_scripts as scripts
from asud.store.build_record import MAX_OUTPUT_CHARS, BuildRecord, BuildView, clip_output, pairs
from asud.store.redis import Redis

__all__ = [
    "BIN_DIRS_KEY", "BUILD_PREFIX", "IMAGE_INDEX_KEY", "MAX_OUTPUT_CHARS", "QUEUED_CLIENTS_KEY",
    "QUEUED_KEY", "REQUEST_INDEX_KEY", "REQUEST_PREFIX", "BuildRecord", "BuildRecords", "BuildView", "TTLs",
    "clip_output",
]

BUILD_PREFIX = "asud:build:"
REQUEST_PREFIX = "asud:request:"
QUEUED_KEY = "asud:queued"
QUEUED_CLIENTS_KEY = "asud:queued:clients"
SEQUENCE_KEY = "asud:seq"
BIN_DIRS_KEY = "asud:bin_dirs"
#: Request hashes and image keys of done builds, for the 2017 API's 12/15-character prefixes (ZRANGEBYLEX).
REQUEST_INDEX_KEY = "asud:index:requests"
IMAGE_INDEX_KEY = "asud:index:images"
#: A request record lives this long after the last POST that named it (a few hundred bytes each).
REQUEST_KEEP_SECONDS = 30 * 86400
#: A finished record is still answered (stale) this long after it expired, then Redis forgets it.
STALE_KEEP_SECONDS = 86400.0


class Validated(Protocol):
    """What ``submit`` reads of ``asud.build.validate.ValidatedRequest``."""

    request_hash: str
    image_key: str
    bin_dir: str

    @property
    def request(self) -> Any: ...
    @property
    def has_defaults(self) -> bool: ...
    @property
    def versioned(self) -> bool: ...
    def job(self) -> dict[str, Any]: ...
    def echo(self) -> dict[str, Any]: ...


@attrs.frozen
class TTLs:
    """Seconds a finished result is answered before the next request rebuilds it."""

    versioned: float = 7 * 86400.0
    unversioned: float = 6 * 3600.0
    defaults: float = 6 * 3600.0
    failure: float = 3600.0

    @classmethod
    def from_retention(cls, retention: RetentionSettings) -> TTLs:
        return cls(retention.ttl_versioned, retention.ttl_unversioned, retention.ttl_defaults,
                   retention.ttl_failure)


def _view(request_hash: str, reply: Any) -> BuildView | None:
    """From the scripts' ``{echo, build fields, rank}`` (``None`` for a request or build not there)."""
    if not reply:
        return None
    echo, flat, rank = reply
    record = BuildRecord.from_fields(pairs(flat))
    return BuildView.of(request_hash, json.loads(echo), record, rank if rank >= 0 else None)


def build_key(image_key: str) -> str:
    return f"{BUILD_PREFIX}{image_key}"


def request_key(request_hash: str) -> str:
    return f"{REQUEST_PREFIX}{request_hash}"


class BuildRecords:
    """Submit, look up, count and purge builds; the pool's state changes of a build."""

    def __init__(self, redis: Redis, *, ttls: TTLs | None = None, max_pending_jobs: int = 200,
                 max_pending_per_client: int = 20, stale_keep: float = STALE_KEEP_SECONDS,
                 clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.redis = redis
        self.ttls = ttls or TTLs()
        self.max_pending_jobs = max_pending_jobs
        self.max_pending_per_client = max_pending_per_client
        self.stale_keep = stale_keep
        self._clock: IReactorTime = clock  # type: ignore[assignment]

    @classmethod
    def from_config(cls, redis: Redis, config: Config, *, clock: IReactorTime | None = None) -> BuildRecords:
        return cls(redis, ttls=TTLs.from_retention(config.retention),
                   max_pending_jobs=config.requests.max_pending_jobs,
                   max_pending_per_client=config.requests.max_pending_per_client, clock=clock)

    def _now(self) -> str:
        return f"{self._clock.seconds():.6f}"

    def _grace(self) -> int:
        return max(1, int(self.stale_keep))

    # -- the API's side ------------------------------------------------------------------------------
    def _ttl_seconds(self, validated: Validated) -> tuple[int, int]:
        if validated.has_defaults:
            ttl = self.ttls.defaults
        elif validated.versioned:
            ttl = self.ttls.versioned
        else:
            ttl = self.ttls.unversioned
        return int(ttl), int(self.ttls.failure)

    @defer.inlineCallbacks
    def submit(self, validated: Validated, *, client: str | None = None) -> Any:
        """The view of ``validated``'s build: a finished result at once, else the queued/started build,
        creating (or re-queuing a stale) one when needed. ``Overloaded`` (529) when the queue is full,
        ``RateLimited`` (429) when this client has too many builds queued."""
        client = (client or validated.request.client or "unknown/0")[:256]
        result_ttl, failure_ttl = self._ttl_seconds(validated)
        keys = [build_key(validated.image_key), request_key(validated.request_hash), QUEUED_KEY,
                QUEUED_CLIENTS_KEY, SEQUENCE_KEY, BIN_DIRS_KEY, QUEUE_KEY, REQUEST_INDEX_KEY]
        args = [validated.image_key, validated.request_hash, client, self._now(),
                json.dumps(validated.job(), separators=(",", ":")),
                json.dumps(validated.echo(), separators=(",", ":")), validated.bin_dir,
                "private" if validated.has_defaults else "public", result_ttl, failure_ttl,
                self.max_pending_jobs, self.max_pending_per_client, REQUEST_KEEP_SECONDS]
        reply = yield self.redis.script(scripts.SUBMIT, keys, args)
        if reply[0] == "overloaded":
            raise Overloaded(f"server overload, queue contains too many build requests: {reply[1]}")
        if reply[0] == "limited":
            raise RateLimited(f"too many queued build requests from this client: {reply[1]}", retry_after=60)
        view = _view(validated.request_hash, reply[2])
        assert view is not None, "a submitted request always has a view"
        return view

    def get(self, request_hash: str) -> defer.Deferred[BuildView | None]:
        """The view of a request hash; ``None`` if unknown (or long expired)."""
        d = self.redis.script(scripts.VIEW, [request_key(request_hash), QUEUED_KEY], [BUILD_PREFIX])
        return d.addCallback(lambda reply: _view(request_hash, reply))

    def record(self, image_key: str) -> defer.Deferred[BuildRecord | None]:
        """The whole build record (for ``build.json``, pages, the pool)."""
        d = self.redis.call("HGETALL", build_key(image_key))
        return d.addCallback(lambda flat: BuildRecord.from_fields(pairs(flat)) if flat else None)

    #: The 2017 API's name for :meth:`record`.
    build = record

    def find_request_hashes(self, prefix: str, *, limit: int = 2) -> defer.Deferred[list[str]]:
        """Request hashes starting with ``prefix`` that Redis still knows (at most ``limit``): a full
        hash, or the 2017 API's unambiguous 12/15-character prefix."""
        d = self.redis.script(scripts.FIND, [REQUEST_INDEX_KEY], [prefix, REQUEST_PREFIX, limit])
        return d.addCallback(list)

    def find_image_keys(self, prefix: str, *, limit: int = 2) -> defer.Deferred[list[str]]:
        """Image keys of built images (done at least once, record still in Redis) starting with
        ``prefix``; callers check the record's status (it may be rebuilding)."""
        d = self.redis.script(scripts.FIND, [IMAGE_INDEX_KEY], [prefix, BUILD_PREFIX, limit])
        return d.addCallback(list)

    @defer.inlineCallbacks
    def prune_indexes(self, batch: int = 500) -> Any:
        """Drop index entries whose record Redis has forgotten (housekeeping); how many were dropped."""
        removed = 0
        for index, prefix in ((REQUEST_INDEX_KEY, REQUEST_PREFIX), (IMAGE_INDEX_KEY, BUILD_PREFIX)):
            cursor = "0"
            while True:
                cursor, flat = yield self.redis.call("ZSCAN", index, cursor, "COUNT", batch)
                members = flat[::2]
                if members:
                    removed += yield self.redis.script(scripts.FORGET, [index], [prefix, *members])
                if cursor == "0":
                    break
        return removed

    def queue_length(self) -> defer.Deferred[int]:
        """Builds waiting for a builder, across every daemon."""
        return self.redis.call("ZCARD", QUEUED_KEY).addCallback(int)

    @defer.inlineCallbacks
    def live_bin_dirs(self) -> Any:
        """bin_dirs whose files are still served (pruning the files store must keep them)."""
        now = self._now()
        yield self.redis.call("ZREMRANGEBYSCORE", BIN_DIRS_KEY, "-inf", f"({now}")
        members = yield self.redis.call("ZRANGEBYSCORE", BIN_DIRS_KEY, now, "+inf")
        return set(members)

    def purge(self, request_hash: str) -> defer.Deferred[bool]:
        """Expire the finished build behind ``request_hash`` so the next request rebuilds it."""
        d = self.redis.script(scripts.PURGE, [request_key(request_hash), BIN_DIRS_KEY],
                              [BUILD_PREFIX, self._now(), self._grace()])
        return d.addCallback(bool)

    # -- the build pool's side -------------------------------------------------------------------------
    def started(self, image_key: str, node: str, entry_id: str | None = None) -> defer.Deferred[Any]:
        """``node`` starts the build: its job (a dict), or ``None`` when there is nothing to build (it is
        finished, or ``entry_id`` is not the entry that stands for it now). Taking over a build a dead
        daemon had started is allowed: the queue only hands out such an entry after its lease."""
        d = self.redis.script(scripts.STARTED, [build_key(image_key), QUEUED_KEY, QUEUED_CLIENTS_KEY],
                              [image_key, node, self._now(), entry_id or ""])
        return d.addCallback(lambda job: json.loads(job) if job else None)

    def stage(self, image_key: str, stage: BuildStage, *, node: str) -> defer.Deferred[bool]:
        """Record the stage ``node`` is at; ``False`` when ``node`` no longer builds it."""
        d = self.redis.script(scripts.STAGE, [build_key(image_key)], [node, stage.value])
        return d.addCallback(bool)

    def holds(self, image_key: str, node: str) -> defer.Deferred[bool]:
        """Whether ``node`` still builds ``image_key`` (checked before its files go into the store)."""
        d = self.redis.call("HMGET", build_key(image_key), "status", "node")
        return d.addCallback(lambda fields: fields == [BuildStatus.STARTED.value, node])

    def done(self, image_key: str, result: dict[str, Any], bin_dir: str, stdout: str, stderr: str, *,
             node: str) -> defer.Deferred[BuildRecord | None]:
        """Record success (fresh for the build's ``result_ttl``); the finished record, for ``build.json``,
        or ``None`` when ``node`` no longer builds it."""
        return self._finish(node, image_key, BuildStatus.DONE, detail="done", error_kind="",
                            stdout=stdout, stderr=stderr, result=result, bin_dir=bin_dir)

    def failed(self, image_key: str, error: AsudError, *, node: str) -> defer.Deferred[BuildRecord | None]:
        """Record failure (answered for ``failure_ttl``): ``detail`` and the class name as ``error_kind``,
        the output of a ``BuildError``."""
        stdout = error.stdout if isinstance(error, BuildError) else ""
        stderr = error.stderr if isinstance(error, BuildError) else ""
        return self._finish(node, image_key, BuildStatus.FAILED, detail=error.detail,
                            error_kind=type(error).__name__, stdout=stdout, stderr=stderr)

    def give_up(self, image_key: str, attempts: int) -> defer.Deferred[BuildRecord | None]:
        """Fail a build that crashed its daemon ``attempts`` times, whoever holds it."""
        detail = f"Error: the build was abandoned {attempts} times (daemon lost); giving up"
        return self._finish("", image_key, BuildStatus.FAILED, error_kind="BuildAbandoned", detail=detail)

    def _finish(self, node: str, image_key: str, status: BuildStatus, *, detail: str, error_kind: str,
                stdout: str = "", stderr: str = "", result: dict[str, Any] | None = None,
                bin_dir: str = "") -> defer.Deferred[BuildRecord | None]:
        keys = [build_key(image_key), BIN_DIRS_KEY, QUEUED_KEY, QUEUED_CLIENTS_KEY, IMAGE_INDEX_KEY]
        args = [image_key, node, self._now(), status.value, detail, error_kind, clip_output(stdout),
                clip_output(stderr), json.dumps(result, separators=(",", ":")) if result is not None else "",
                bin_dir, self._grace()]
        d = self.redis.script(scripts.FINISH, keys, args)
        return d.addCallback(lambda flat: BuildRecord.from_fields(pairs(flat)) if flat else None)

    def requeue(self, image_key: str, *, node: str) -> defer.Deferred[str | None]:
        """Hand a build back (the daemon stops): queued again at its old place with a fresh stream entry,
        whose id is returned (``None`` if ``node`` did not hold it). Acknowledge the old entry after."""
        keys = [build_key(image_key), QUEUED_KEY, QUEUED_CLIENTS_KEY, QUEUE_KEY]
        return self.redis.script(scripts.REQUEUE, keys, [image_key, node])
