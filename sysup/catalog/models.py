"""The catalog tables: what the server knows about each distribution's download server.

Package indexes are stored one row per *feed directory* (``PackageFeed``) with the parsed records as
zstd-compressed JSON, not one row per package: a real arch has ~10,000 packages across its feeds and a
cold sync of ~100 targets must stay within seconds; readers always need a whole feed at once anyway.

Rows that disappear upstream are kept and marked ``present = False`` so that builds referring to them
can still be explained.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from sysup.database import Base


class Branch(Base):
    """A release branch (``24.10``) or ``SNAPSHOT`` of a distribution."""

    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("distro", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    distro: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    #: ``releases/{version}`` or ``snapshots``.
    path: Mapped[str] = mapped_column(String(255))
    snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    branch_off_rev: Mapped[int | None] = mapped_column(Integer, nullable=True)
    present: Mapped[bool] = mapped_column(Boolean, default=True)


class Version(Base):
    """One version of a branch (``24.10.4``, ``24.10-SNAPSHOT``, ``SNAPSHOT``)."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("distro", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    distro: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64), index=True)
    branch: Mapped[str] = mapped_column(String(64), index=True)
    #: Path of the version below the upstream URL: ``releases/24.10.4`` or ``snapshots``.
    path: Mapped[str] = mapped_column(String(255))
    snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    package_manager: Mapped[str] = mapped_column(String(8), default="opkg")
    present: Mapped[bool] = mapped_column(Boolean, default=True, index=True)


class Target(Base):
    """A ``target/subtarget`` of a version with the top-level data of its ``profiles.json``."""

    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("distro", "version", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    distro: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), index=True)
    arch_packages: Mapped[str] = mapped_column(String(128), index=True)
    version_code: Mapped[str] = mapped_column(String(128), default="")
    source_date_epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    default_packages: Mapped[list[str]] = mapped_column(JSON, default=list)
    linux_kernel: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    #: Top-level keys of ``profiles.json`` except ``profiles`` (passed on unchanged to clients).
    profiles_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: sha256 of the ``profiles.json`` the rows were read from (checked against the signed sha256sums).
    profiles_sha256: Mapped[str] = mapped_column(String(64), default="")
    package_manager: Mapped[str] = mapped_column(String(8), default="opkg")
    present: Mapped[bool] = mapped_column(Boolean, default=True, index=True)


class Profile(Base):
    """One device profile of a target's ``profiles.json``."""

    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("target_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    titles: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    supported_devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    device_packages: Mapped[list[str]] = mapped_column(JSON, default=list)
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    image_prefix: Mapped[str] = mapped_column(String(255), default="")
    file_size_limits: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)


class SupportedDevice(Base):
    """``supported_devices`` entry → profile, for the board-name lookup clients depend on (LuCI sends
    ``tplink,archer-c7-v5``). ``device`` is stored as listed; ``device_key`` with ``,`` → ``_``."""

    __tablename__ = "supported_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), index=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    device: Mapped[str] = mapped_column(String(255))
    device_key: Mapped[str] = mapped_column(String(255), index=True)


class PackageFeed(Base):
    """One package index directory: ``scope`` ``target`` (key = target, feed ``packages`` or ``kmods``)
    or ``arch`` (key = arch, feed ``base``/``packages``/``luci``/``routing``/``telephony``)."""

    __tablename__ = "package_feeds"
    __table_args__ = (UniqueConstraint("distro", "version", "scope", "key", "feed"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    distro: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(8), index=True)
    key: Mapped[str] = mapped_column(String(128), index=True)
    feed: Mapped[str] = mapped_column(String(64))
    #: URL of the directory (ends with ``/``).
    url: Mapped[str] = mapped_column(Text)
    #: sha256 of the index file the records were read from; readers use it to invalidate caches.
    index_sha256: Mapped[str] = mapped_column(String(64), default="")
    #: ``full`` (opkg Packages: depends, provides, …) or ``names`` (apk index.json: names + versions).
    detail: Mapped[str] = mapped_column(String(8), default="full")
    package_count: Mapped[int] = mapped_column(Integer, default=0)
    #: zstd-compressed JSON list of records (see ``sysup.catalog.records_codec``).
    records: Mapped[bytes] = mapped_column(LargeBinary)
    present: Mapped[bool] = mapped_column(Boolean, default=True, index=True)


class UpstreamFile(Base):
    """Validators of every URL read, for conditional re-sync; ``content`` keeps the small files a
    re-sync needs even when the server answers 304 (version lists, ``sha256sums`` and signatures)."""

    __tablename__ = "upstream_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(1024), unique=True, index=True)
    etag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    content: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
