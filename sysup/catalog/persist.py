"""Writing what a sync collected: one transaction per target or architecture, nothing when unchanged.

The sync (``sysup.catalog.sync``) fetches and verifies; this module only turns its verified results
into rows. Each ``*Update`` holds everything derived from one signed set of files together with the
validators of those files, so data and validators are committed together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from asud.upstream.records import PackageRecord, ProfilesDocument
from sysup.catalog.conditional import FileState, store_file_states
from sysup.catalog.models import Branch, PackageFeed, Profile, SupportedDevice, Target, Version
from sysup.catalog.records_codec import encode_records


@dataclass(slots=True)
class FeedUpdate:
    """A feed directory read afresh (``records``), or found absent (``records is None``)."""

    scope: str
    key: str
    feed: str
    url: str
    index_sha256: str = ""
    detail: str = "full"
    records: list[PackageRecord] | None = None


@dataclass(slots=True)
class TargetUpdate:
    target: str
    #: The new ``profiles.json`` (``None``: unchanged since the last sync).
    document: ProfilesDocument | None = None
    profiles_sha256: str = ""
    package_manager: str = "opkg"
    feeds: list[FeedUpdate] = field(default_factory=list)
    files: list[FileState] = field(default_factory=list)
    #: The stored row was marked absent and is back.
    revive: bool = False

    @property
    def empty(self) -> bool:
        return self.document is None and not self.feeds and not self.files and not self.revive


@dataclass(frozen=True, slots=True)
class WriteCounts:
    profiles: int = 0
    packages: int = 0
    feeds: int = 0


def write_target(session: Session, distro: str, version: str, update: TargetUpdate) -> WriteCounts:
    """Store a target's profiles and package feeds (inside the caller's transaction)."""
    profiles = 0
    row = session.scalars(
        select(Target).where(
            Target.distro == distro, Target.version == version, Target.target == update.target
        )
    ).one_or_none()
    document = update.document
    if document is not None:
        if row is None:
            row = Target(distro=distro, version=version, target=update.target)
            session.add(row)
        row.arch_packages = document.arch_packages
        row.version_code = document.version_code
        row.source_date_epoch = document.source_date_epoch
        row.default_packages = list(document.default_packages)
        kernel = document.linux_kernel
        row.linux_kernel = (
            {"version": kernel.version, "release": kernel.release, "vermagic": kernel.vermagic}
            if kernel
            else None
        )
        row.profiles_meta = {key: value for key, value in document.raw.items() if key != "profiles"}
        row.profiles_sha256 = update.profiles_sha256
        row.package_manager = update.package_manager
        row.present = True
        session.flush()
        profiles = _replace_profiles(session, row.id, document)
    elif row is not None and update.revive:
        row.present = True
    feeds = packages = 0
    for feed in update.feeds:
        packages += write_feed(session, distro, version, feed)
        feeds += 1
    store_file_states(session, update.files)
    return WriteCounts(profiles=profiles, packages=packages, feeds=feeds)


def _replace_profiles(session: Session, target_id: int, document: ProfilesDocument) -> int:
    session.execute(delete(SupportedDevice).where(SupportedDevice.target_id == target_id))
    session.execute(delete(Profile).where(Profile.target_id == target_id))
    if not document.profiles:
        return 0
    rows: list[dict[str, Any]] = [
        {
            "target_id": target_id,
            "name": entry.id,
            "titles": [dict(title) for title in entry.titles],
            "supported_devices": list(entry.supported_devices),
            "device_packages": list(entry.device_packages),
            "images": [image.to_json() for image in entry.images],
            "image_prefix": entry.image_prefix,
            "file_size_limits": entry.file_size_limits,
        }
        for entry in document.profiles.values()
    ]
    session.execute(insert(Profile), rows)
    ids = {
        name: profile_id
        for name, profile_id in session.execute(
            select(Profile.name, Profile.id).where(Profile.target_id == target_id)
        )
    }
    devices = [
        {
            "target_id": target_id,
            "profile_id": ids[entry.id],
            "device": device,
            "device_key": device.replace(",", "_"),
        }
        for entry in document.profiles.values()
        for device in dict.fromkeys(entry.supported_devices)
    ]
    if devices:
        session.execute(insert(SupportedDevice), devices)
    return len(rows)


def write_feed(session: Session, distro: str, version: str, feed: FeedUpdate) -> int:
    """Upsert one feed row; returns the number of package records written."""
    row = session.scalars(
        select(PackageFeed).where(
            PackageFeed.distro == distro,
            PackageFeed.version == version,
            PackageFeed.scope == feed.scope,
            PackageFeed.key == feed.key,
            PackageFeed.feed == feed.feed,
        )
    ).one_or_none()
    if feed.records is None:
        if row is not None and row.present:
            row.present = False
        return 0
    if row is None:
        row = PackageFeed(distro=distro, version=version, scope=feed.scope, key=feed.key, feed=feed.feed)
        session.add(row)
    row.url = feed.url
    row.index_sha256 = feed.index_sha256
    row.detail = feed.detail
    row.package_count = len(feed.records)
    row.records = encode_records(feed.records)
    row.present = True
    return len(feed.records)


def write_version(
    session: Session,
    distro: str,
    version: str,
    *,
    branch: str,
    path: str,
    snapshot: bool,
    package_manager: str,
) -> bool:
    """Upsert a version row; ``True`` when anything was written."""
    wanted = {"branch": branch, "path": path, "snapshot": snapshot, "package_manager": package_manager}
    return _upsert(session, Version, {"distro": distro, "version": version}, wanted)


def write_branch(
    session: Session,
    distro: str,
    *,
    name: str,
    path: str,
    snapshot: bool,
    enabled: bool,
    branch_off_rev: int | None,
) -> bool:
    """Upsert a branch row; ``True`` when anything was written."""
    wanted = {"path": path, "snapshot": snapshot, "enabled": enabled, "branch_off_rev": branch_off_rev}
    return _upsert(session, Branch, {"distro": distro, "name": name}, wanted)


def _upsert(
    session: Session, model: type[Branch] | type[Version], keys: dict[str, str], wanted: dict[str, object]
) -> bool:
    """Insert the row named by ``keys`` or bring it to ``wanted`` (and present); ``True`` if written.

    Writing only what differs keeps an unchanged re-sync free of UPDATEs.
    """
    wanted = {**wanted, "present": True}
    query = select(model)
    for column, value in keys.items():
        query = query.where(getattr(model, column) == value)
    row = session.scalars(query).one_or_none()
    if row is None:
        session.add(model(**keys, **wanted))
        return True
    changed = False
    for column, value in wanted.items():
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    return changed


def mark_absent(session: Session, model: type[Branch] | type[Version] | type[Target], ids: list[int]) -> int:
    """Mark rows that disappeared upstream; they stay for builds that refer to them."""
    if not ids:
        return 0
    session.execute(update(model).where(model.id.in_(ids)).values(present=False))
    return len(ids)
