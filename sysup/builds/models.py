"""The tables of builds and of the requests that point at them.

A ``Build`` is one image (unique ``image_key``); many ``BuildRequestRecord`` rows (unique ``request_hash``)
can share it. Both uniquenesses are enforced by the database, so concurrent identical POSTs race on an
insert and all but one read the winner's row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from sysup.database import Base

#: Longest stdout/stderr kept on a build record (the full log is ``build.log`` in the store).
MAX_OUTPUT_CHARS = 256 * 1024


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on SQLite (which drops tzinfo) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def clip_output(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and tail of a long log: errors are usually at the end."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - limit} characters cut …]\n{text[-half:]}"


class Build(Base):
    """One image to build, its life cycle, lease and result."""

    __tablename__ = "builds"
    __table_args__ = (Index("ix_builds_status_queued", "status", "queued_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(32))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Who builds it now, and until when the claim holds unless renewed.
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: What the worker builds (``ValidatedRequest.job()``).
    job: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The client that caused the build (per-client queue limits).
    client: Mapped[str] = mapped_column(String(256), default="", index=True)
    #: For ``done``: the §6.3 fields (flattened profiles.json, images, manifest, build_cmd, …).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    error_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stdout: Mapped[str] = mapped_column(Text, default="")
    stderr: Mapped[str] = mapped_column(Text, default="")
    bin_dir: Mapped[str | None] = mapped_column(String(160), nullable=True)
    #: ``public`` or ``private`` (built with ``defaults``: never listed).
    store_kind: Mapped[str] = mapped_column(String(16), default="public")
    #: Seconds a finished result is kept (success, failure); decided when the build is created.
    result_ttl: Mapped[int] = mapped_column(Integer)
    failure_ttl: Mapped[int] = mapped_column(Integer)
    #: After this a finished build is stale: the next request rebuilds it.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)


class BuildRequestRecord(Base):
    """One distinct request (by ``request_hash``) and the image it currently maps to."""

    __tablename__ = "build_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), unique=True)
    image_key: Mapped[str] = mapped_column(String(64), index=True)
    #: The normalised request, as echoed in ``request`` of every answer.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    client: Mapped[str] = mapped_column(String(256), default="")
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    distro: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), index=True)
    profile: Mapped[str] = mapped_column(String(128))
    has_defaults: Mapped[bool] = mapped_column(Boolean, default=False)
