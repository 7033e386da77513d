"""State changes of a build record, each one atomic compare-and-set ``UPDATE``.

Huey does not redeliver a task whose worker died, so a worker *leases* a build (``claim``) and renews the
lease; the reaper (``reap``) re-queues builds whose lease ran out. Every write of a worker names its lease
owner, so a worker that lost its lease cannot overwrite the result of the one that took over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from asud.build.stages import BuildStage, BuildStatus
from sysup.builds.models import Build, clip_output, utcnow

SessionFactory = sessionmaker[Session] | Callable[[], Session]


def claim(
    sessions: SessionFactory, build_id: int, owner: str, lease: timedelta, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """Lease a queued build (or one whose lease expired) for ``owner``; returns its job, or ``None`` when it
    is finished or leased by a live worker (the task is then a no-op)."""
    now = now or utcnow()
    with sessions() as session, session.begin():
        result = session.execute(
            update(Build)
            .where(
                Build.id == build_id,
                or_(
                    Build.status == BuildStatus.QUEUED.value,
                    and_(Build.status == BuildStatus.STARTED.value, Build.lease_expires_at < now),
                ),
            )
            .values(
                status=BuildStatus.STARTED.value,
                stage=BuildStage.INIT.value,
                started_at=now,
                lease_owner=owner,
                lease_expires_at=now + lease,
                attempts=Build.attempts + 1,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return dict(session.scalar(select(Build.job).where(Build.id == build_id)) or {})


def renew(sessions: SessionFactory, build_id: int, owner: str, lease: timedelta) -> bool:
    """Extend ``owner``'s lease; ``False`` when the lease was lost."""
    return _update_owned(sessions, build_id, owner, lease_expires_at=utcnow() + lease)


def set_stage(sessions: SessionFactory, build_id: int, owner: str, stage: BuildStage) -> bool:
    return _update_owned(sessions, build_id, owner, stage=stage.value)


def holds_lease(sessions: SessionFactory, build_id: int, owner: str) -> bool:
    with sessions() as session:
        row = session.execute(
            select(Build.lease_owner, Build.status, Build.lease_expires_at).where(Build.id == build_id)
        ).first()
    return bool(row and row[0] == owner and row[1] == BuildStatus.STARTED.value and row[2] > utcnow())


def finish_done(
    sessions: SessionFactory,
    build_id: int,
    owner: str,
    *,
    result: dict[str, Any],
    bin_dir: str,
    stdout: str,
    stderr: str,
) -> bool:
    """Record success; the result stays fresh for the build's ``result_ttl``."""
    now = utcnow()
    with sessions() as session, session.begin():
        ttl = session.scalar(select(Build.result_ttl).where(Build.id == build_id)) or 0
        return _owned(session, build_id, owner, dict(
            status=BuildStatus.DONE.value, stage=BuildStage.DONE.value, finished_at=now, result=result,
            bin_dir=bin_dir, detail="done", error_kind=None, stdout=clip_output(stdout),
            stderr=clip_output(stderr), lease_owner=None, lease_expires_at=None,
            expires_at=now + timedelta(seconds=ttl),
        ))


def finish_failed(
    sessions: SessionFactory,
    build_id: int,
    owner: str | None,
    *,
    detail: str,
    error_kind: str,
    stdout: str = "",
    stderr: str = "",
    bin_dir: str | None = None,
) -> bool:
    """Record failure; it is answered from cache for the build's ``failure_ttl``. ``owner=None`` is the
    reaper giving up on an abandoned build."""
    now = utcnow()
    with sessions() as session, session.begin():
        ttl = session.scalar(select(Build.failure_ttl).where(Build.id == build_id)) or 0
        return _owned(session, build_id, owner, dict(
            status=BuildStatus.FAILED.value, stage=BuildStage.FAILED.value, finished_at=now,
            detail=detail, error_kind=error_kind, stdout=clip_output(stdout), stderr=clip_output(stderr),
            bin_dir=bin_dir, lease_owner=None, lease_expires_at=None,
            expires_at=now + timedelta(seconds=ttl),
        ))


def reap(
    sessions: SessionFactory, *, max_attempts: int, stuck_after: timedelta, now: datetime | None = None
) -> list[int]:
    """Re-queue started builds whose lease expired (fail them after ``max_attempts``), and queued builds
    that waited longer than ``stuck_after`` (their task may have been lost). Returns the ids to enqueue —
    after this function committed."""
    now = now or utcnow()
    requeue: list[int] = []
    with sessions() as session:
        expired = session.execute(
            select(Build.id, Build.attempts).where(
                Build.status == BuildStatus.STARTED.value, Build.lease_expires_at < now
            )
        ).all()
        waiting = session.scalars(
            select(Build.id).where(
                Build.status == BuildStatus.QUEUED.value,
                or_(
                    and_(Build.lease_expires_at.is_(None), Build.queued_at < now - stuck_after),
                    Build.lease_expires_at < now,
                ),
            )
        ).all()
    for build_id, attempts in expired:
        if attempts >= max_attempts:
            finish_failed(
                sessions, build_id, None,
                detail=f"Error: the build was abandoned {attempts} times (worker lost); giving up",
                error_kind="BuildAbandoned",
            )
            continue
        with sessions() as session, session.begin():
            changed = session.execute(
                update(Build)
                .where(Build.id == build_id, Build.status == BuildStatus.STARTED.value,
                       Build.lease_expires_at < now)
                .values(status=BuildStatus.QUEUED.value, stage=BuildStage.INIT.value, lease_owner=None,
                        lease_expires_at=now + stuck_after)
            ).rowcount  # type: ignore[attr-defined]
        if changed == 1:
            requeue.append(build_id)
    for build_id in waiting:
        with sessions() as session, session.begin():
            # The lease column of a queued build marks when the reaper may look at it again.
            changed = session.execute(
                update(Build)
                .where(Build.id == build_id, Build.status == BuildStatus.QUEUED.value)
                .values(lease_expires_at=now + stuck_after)
            ).rowcount  # type: ignore[attr-defined]
        if changed == 1:
            requeue.append(build_id)
    return requeue


def queued_before(sessions: SessionFactory, before: datetime) -> list[int]:
    """Ids of builds queued before ``before`` and still waiting (candidates for a lost task)."""
    with sessions() as session:
        return list(session.scalars(
            select(Build.id).where(Build.status == BuildStatus.QUEUED.value, Build.queued_at < before)
        ).all())


def _update_owned(sessions: SessionFactory, build_id: int, owner: str, **values: Any) -> bool:
    with sessions() as session, session.begin():
        return _owned(session, build_id, owner, values)


def _owned(session: Session, build_id: int, owner: str | None, values: dict[str, Any]) -> bool:
    condition = Build.lease_owner == owner if owner is not None else Build.lease_owner.is_not(None)
    result = session.execute(
        update(Build)
        .where(Build.id == build_id, Build.status == BuildStatus.STARTED.value, condition)
        .values(**values)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]
