"""Submitting validated requests and reading build status: what the API calls.

Dedupe happens twice: by ``request_hash`` (one row per distinct request) and by ``image_key`` (one build
per distinct image). Both are unique in the database; concurrent submitters race on ``INSERT … ON CONFLICT
DO NOTHING`` and the losers read the winner's row, so 100 identical POSTs make exactly one build. A task is
enqueued only after the transaction that created or re-queued the build has committed.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from asud.build.stages import BuildStage, BuildStatus
from asud.errors import Overloaded, RateLimited
from sysup.build_requests.validate import ValidatedRequest
from sysup.builds.models import Build, BuildRequestRecord, utcnow
from sysup.builds.records import SessionFactory
from sysup.config import Settings

log = logging.getLogger(__name__)

#: How long a finished view may be answered from the in-process cache before the database is asked again
#: (bounds how long a ``sysup purge`` run in another process takes to be seen).
VIEW_CACHE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class BuildView:
    """Everything the API needs to answer for one request hash (clients-contract §6.3 to 6.5)."""

    request_hash: str
    image_key: str
    status: BuildStatus
    stage: BuildStage
    #: 0-based count of builds queued before this one; ``None`` unless queued.
    queue_position: int | None
    enqueued_at: datetime
    #: The normalised request echo (``request`` of every answer).
    request: dict[str, Any]
    detail: str
    #: For ``done``: flattened profiles.json + ``images``, ``manifest``, ``build_cmd``, ``build_at``, …
    result: dict[str, Any] | None
    stdout: str
    stderr: str
    bin_dir: str | None
    error_kind: str | None
    expires_at: datetime | None = None

    @property
    def imagebuilder_status(self) -> str:
        """``X-Imagebuilder-Status`` / ``imagebuilder_status``: queued, a started stage, done or failed."""
        if self.status is BuildStatus.QUEUED:
            return "queued"
        if self.status is BuildStatus.STARTED:
            return self.stage.client_status
        return self.status.value


@dataclass(frozen=True, slots=True)
class TTLs:
    versioned: timedelta = timedelta(days=7)
    unversioned: timedelta = timedelta(hours=6)
    defaults: timedelta = timedelta(hours=6)
    failure: timedelta = timedelta(hours=1)


class BuildService:
    """Submit, look up, count and purge builds."""

    def __init__(
        self,
        sessions: SessionFactory,
        enqueue: Callable[[int], None],
        *,
        ttls: TTLs | None = None,
        max_pending_jobs: int = 200,
        max_pending_per_client: int = 20,
        cache_size: int = 4096,
    ) -> None:
        self._sessions = sessions
        self._enqueue = enqueue
        self._ttls = ttls or TTLs()
        self._max_pending_jobs = max_pending_jobs
        self._max_pending_per_client = max_pending_per_client
        self._cache: OrderedDict[str, tuple[BuildView, float]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, sessions: SessionFactory, enqueue: Callable[[int], None], settings: Settings
    ) -> BuildService:
        return cls(
            sessions,
            enqueue,
            ttls=TTLs(settings.ttl_versioned, settings.ttl_unversioned, settings.ttl_defaults,
                      settings.ttl_failure),
            max_pending_jobs=settings.max_pending_jobs,
            max_pending_per_client=settings.max_pending_per_client,
        )

    # -- submit -----------------------------------------------------------------------------------
    def submit(self, validated: ValidatedRequest, *, client: str | None = None) -> BuildView:
        """The view of ``validated``'s build: a cached result at once, else the queued/started build,
        creating (or re-queuing a stale) one when needed. ``Overloaded`` beyond the queue limits."""
        client = (client or validated.request.client or "unknown/0")[:256]
        now = utcnow()
        with self._sessions() as session:
            build = session.execute(
                select(Build.id, Build.status, Build.expires_at).where(Build.image_key == validated.image_key)
            ).first()
            mapped_key = session.scalar(
                select(BuildRequestRecord.image_key).where(
                    BuildRequestRecord.request_hash == validated.request_hash
                )
            )
        to_enqueue: int | None = None
        if build is None:
            self._check_capacity(client)
            build_id = self._insert_build(validated, client, now)
            if build_id is not None:
                to_enqueue = build_id
        elif _is_stale(build.status, build.expires_at, now):
            self._check_capacity(client)
            if self._requeue_stale(build.id, validated, client, now):
                to_enqueue = build.id
        if mapped_key != validated.image_key:
            self._upsert_request(validated, client, now)
        if to_enqueue is not None:
            self._forget(validated.request_hash)
            try:
                self._enqueue(to_enqueue)
            except Exception as error:  # committed already: the reaper enqueues it once the queue is back
                log.warning("build %s saved, not enqueued (%s: %s)", to_enqueue, type(error).__name__, error)
        view = self.get(validated.request_hash)
        assert view is not None, "a submitted request always has a view"
        return view

    def _check_capacity(self, client: str) -> None:
        with self._sessions() as session:
            queued = session.scalar(
                select(func.count()).select_from(Build).where(Build.status == BuildStatus.QUEUED.value)
            ) or 0
            if queued >= self._max_pending_jobs:
                raise Overloaded(f"server overload, queue contains too many build requests: {queued}")
            mine = session.scalar(
                select(func.count()).select_from(Build).where(
                    Build.status == BuildStatus.QUEUED.value, Build.client == client
                )
            ) or 0
        if mine >= self._max_pending_per_client:
            raise RateLimited(f"too many queued build requests from this client: {mine}", retry_after=60)

    def _ttl_seconds(self, validated: ValidatedRequest) -> tuple[int, int]:
        if validated.has_defaults:
            ttl = self._ttls.defaults
        elif validated.versioned:
            ttl = self._ttls.versioned
        else:
            ttl = self._ttls.unversioned
        return int(ttl.total_seconds()), int(self._ttls.failure.total_seconds())

    def _insert_build(self, validated: ValidatedRequest, client: str, now: datetime) -> int | None:
        """Insert the build; its id if this call created it, ``None`` if another submitter won."""
        result_ttl, failure_ttl = self._ttl_seconds(validated)
        values = dict(
            image_key=validated.image_key, status=BuildStatus.QUEUED.value, stage=BuildStage.INIT.value,
            queued_at=now, attempts=0, job=validated.job(), client=client, detail="", stdout="", stderr="",
            bin_dir=validated.bin_dir, store_kind="private" if validated.has_defaults else "public",
            result_ttl=result_ttl, failure_ttl=failure_ttl,
        )
        with self._sessions() as session, session.begin():
            statement = _insert(session, Build).values(**values).on_conflict_do_nothing(
                index_elements=["image_key"]
            ).returning(Build.id)
            return session.scalar(statement)

    def _requeue_stale(self, build_id: int, validated: ValidatedRequest, client: str, now: datetime) -> bool:
        """Turn an expired result back into a queued build; ``True`` for the one submitter that did."""
        result_ttl, failure_ttl = self._ttl_seconds(validated)
        with self._sessions() as session, session.begin():
            result = session.execute(
                update(Build)
                .where(
                    Build.id == build_id,
                    Build.status.in_([BuildStatus.DONE.value, BuildStatus.FAILED.value]),
                    Build.expires_at <= now,
                )
                .values(
                    status=BuildStatus.QUEUED.value, stage=BuildStage.INIT.value, queued_at=now,
                    started_at=None, finished_at=None, lease_owner=None, lease_expires_at=None, attempts=0,
                    job=validated.job(), client=client, result=None, detail="", error_kind=None, stdout="",
                    stderr="", bin_dir=validated.bin_dir, expires_at=None, result_ttl=result_ttl,
                    failure_ttl=failure_ttl,
                )
            )
            return result.rowcount == 1  # type: ignore[attr-defined]

    def _upsert_request(self, validated: ValidatedRequest, client: str, now: datetime) -> None:
        request = validated.request
        echo = request.model_dump(mode="json")
        with self._sessions() as session, session.begin():
            statement = _insert(session, BuildRequestRecord).values(
                request_hash=validated.request_hash, image_key=validated.image_key, request=echo,
                client=client, enqueued_at=now, distro=request.distro, version=request.version,
                target=request.target, profile=validated.profile, has_defaults=validated.has_defaults,
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["request_hash"], set_={"image_key": validated.image_key}
                )
            )

    # -- read -------------------------------------------------------------------------------------
    def get(self, request_hash: str) -> BuildView | None:
        """The view of a request hash, ``None`` if unknown. Finished views come from an in-process LRU."""
        now = utcnow()
        cached = self._cached(request_hash, now)
        if cached is not None:
            return cached
        ahead = aliased(Build)
        position = (
            select(func.count())
            .select_from(ahead)
            .where(
                ahead.status == BuildStatus.QUEUED.value,
                or_(
                    ahead.queued_at < Build.queued_at,
                    and_(ahead.queued_at == Build.queued_at, ahead.id < Build.id),
                ),
            )
            .scalar_subquery()
        )
        statement = (
            select(
                BuildRequestRecord,
                Build,
                case((Build.status == BuildStatus.QUEUED.value, position), else_=None),
            )
            .join(Build, Build.image_key == BuildRequestRecord.image_key)
            .where(BuildRequestRecord.request_hash == request_hash)
        )
        with self._sessions() as session:
            row = session.execute(statement).first()
        if row is None:
            return None
        record, build, queue_position = row
        view = _view(record, build, queue_position)
        if view.status.is_finished:
            self._remember(view, now)
        return view

    def queue_length(self) -> int:
        """Builds waiting for a worker."""
        with self._sessions() as session:
            return session.scalar(
                select(func.count()).select_from(Build).where(Build.status == BuildStatus.QUEUED.value)
            ) or 0

    def live_bin_dirs(self) -> set[str]:
        """bin_dirs of results still served (pruning the store must keep them)."""
        now = utcnow()
        with self._sessions() as session:
            rows = session.scalars(
                select(Build.bin_dir).where(
                    Build.bin_dir.is_not(None),
                    or_(Build.status.in_([BuildStatus.QUEUED.value, BuildStatus.STARTED.value]),
                        Build.expires_at > now),
                )
            ).all()
        return {row for row in rows if row}

    # -- admin ------------------------------------------------------------------------------------
    def purge(self, request_hash: str) -> bool:
        """Expire the finished build behind ``request_hash`` so the next request rebuilds it."""
        self._forget(request_hash)
        with self._sessions() as session:
            key = session.scalar(
                select(BuildRequestRecord.image_key).where(BuildRequestRecord.request_hash == request_hash)
            )
        if key is None:
            return False
        with self._sessions() as session, session.begin():
            result = session.execute(
                update(Build)
                .where(Build.image_key == key, Build.status.in_(_FINISHED))
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
            changed = result.rowcount == 1  # type: ignore[attr-defined]
        self._forget(request_hash)
        return changed

    # -- cache ------------------------------------------------------------------------------------
    def _cached(self, request_hash: str, now: datetime) -> BuildView | None:
        with self._lock:
            entry = self._cache.get(request_hash)
            if entry is None:
                return None
            view, valid_until = entry
            if valid_until <= now.timestamp():
                del self._cache[request_hash]
                return None
            self._cache.move_to_end(request_hash)
            return view

    def _remember(self, view: BuildView, now: datetime) -> None:
        valid_until = now.timestamp() + VIEW_CACHE_SECONDS
        if view.expires_at is not None:
            valid_until = min(valid_until, view.expires_at.timestamp())
        with self._lock:
            self._cache[view.request_hash] = (view, valid_until)
            self._cache.move_to_end(view.request_hash)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _forget(self, request_hash: str) -> None:
        with self._lock:
            self._cache.pop(request_hash, None)


_FINISHED = (BuildStatus.DONE.value, BuildStatus.FAILED.value)


def _is_stale(status: str, expires_at: datetime | None, now: datetime) -> bool:
    return BuildStatus(status).is_finished and expires_at is not None and expires_at <= now


def _insert(session: Session, table: type[Any]) -> Any:
    """The dialect's ``INSERT`` with ``ON CONFLICT`` support (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _view(record: BuildRequestRecord, build: Build, queue_position: int | None) -> BuildView:
    status = BuildStatus(build.status)
    if status is BuildStatus.QUEUED:
        detail = "queued"
    elif status is BuildStatus.STARTED:
        detail = "started"
    elif status is BuildStatus.DONE:
        detail = "done"
    else:
        detail = build.detail or "failed"
    return BuildView(
        request_hash=record.request_hash,
        image_key=build.image_key,
        status=status,
        stage=BuildStage(build.stage),
        queue_position=int(queue_position or 0) if status is BuildStatus.QUEUED else None,
        enqueued_at=build.queued_at,
        request=dict(record.request),
        detail=detail,
        result=dict(build.result) if build.result is not None and status is BuildStatus.DONE else None,
        stdout=build.stdout or "",
        stderr=build.stderr or "",
        bin_dir=build.bin_dir if status is BuildStatus.DONE else None,
        error_kind=build.error_kind,
        expires_at=build.expires_at,
    )
