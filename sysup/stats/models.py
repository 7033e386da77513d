"""The statistics tables.

Raw events (``stats_requests`` with ``stats_requested_packages``, ``stats_builds``) are kept for the
configured retention; ``StatsRecorder.roll_up`` then adds them into ``stats_daily`` and deletes them in
the same transaction, so every total (aggregates + remaining events) stays exact. ``defaults`` content is
never stored, only whether a request had one.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sysup.builds.models import UTCDateTime
from sysup.database import Base


class RequestEvent(Base):
    """One accepted build request (v1 or 2017 API) and whether it was answered from the cache."""

    __tablename__ = "stats_requests"
    __table_args__ = (Index("ix_stats_requests_at_version", "at", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: ``v1``, ``build-request`` or ``upgrade-request``.
    api: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(256), default="unknown")
    distro: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), index=True)
    profile: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    has_defaults: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The answer was a finished image already in the cache (no build needed).
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False)


class RequestedPackage(Base):
    """A package named by a request (``-name`` removals are not counted)."""

    __tablename__ = "stats_requested_packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("stats_requests.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)


class BuildEvent(Base):
    """One finished build, copied from ``builds`` by ``StatsRecorder.collect_builds`` (unique per build
    and finish time, so collecting twice, or from two processes, records it once)."""

    __tablename__ = "stats_builds"
    __table_args__ = (UniqueConstraint("build_id", "finished_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    build_id: Mapped[int] = mapped_column(Integer, index=True)
    image_key: Mapped[str] = mapped_column(String(64))
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    #: ``done`` or ``failed``.
    outcome: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    distro: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    profile: Mapped[str] = mapped_column(String(128))
    #: Seconds from the worker's claim to the result.
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    #: sha256 of the sorted ``name - version`` lines of the manifest (``/api/manifest/<hash>``).
    manifest_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class DailyAggregate(Base):
    """Counts of one day, kept forever. ``kind`` says what ``name`` is:

    ========  ==========================  =====================================================
    kind      name                        count / seconds
    ========  ==========================  =====================================================
    request   client                      requests (per version and target)
    cache     ``hit`` / ``miss``          requests (per version and target)
    package   package name                requests naming it
    build     ``done`` / ``failed``       builds; ``seconds`` is their summed build time
    build_le  histogram bucket bound      builds that took at most that many seconds
    ========  ==========================  =====================================================
    """

    __tablename__ = "stats_daily"
    __table_args__ = (UniqueConstraint("day", "kind", "version", "target", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    target: Mapped[str] = mapped_column(String(128), default="")
    name: Mapped[str] = mapped_column(String(256), default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


#: Tables of this package (``Base.metadata.create_all(engine, tables=STATS_TABLES)`` in tests).
STATS_TABLES = [
    RequestEvent.__table__,
    RequestedPackage.__table__,
    BuildEvent.__table__,
    DailyAggregate.__table__,
]
