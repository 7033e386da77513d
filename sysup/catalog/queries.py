"""The read side of the catalog: what the API, request validation and the builder ask.

``BranchInfo``, ``VersionInfo`` and ``TargetInfo`` (``sysup.catalog.info``) are re-exported here.

Package indexes are decoded once and kept in memory; each call checks the stored feeds' hashes (one
small indexed query), so a sync in another process invalidates the cached index without any signal.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from asud.catalog.resolver import IMAGEBUILDER_PACKAGES, PackageIndex
from asud.upstream.profiles_json import parse_profile_entry
from asud.upstream.records import LinuxKernel, PackageManager, PackageRecord, ProfileEntry
from asud.upstream.version_order import release_key
from sysup.catalog.collect import ARCH_FEEDS
from sysup.catalog.info import BranchInfo, TargetInfo, VersionInfo
from sysup.catalog.models import Branch, PackageFeed, Profile, SupportedDevice, Target, Version
from sysup.catalog.package_changes import changes_for_branch, package_changes_for
from sysup.catalog.records_codec import decode_records
from sysup.config import DistroSettings

__all__ = ["FEED_ORDER", "BranchInfo", "Catalog", "TargetInfo", "VersionInfo"]

#: Feed order of a build, as the ImageBuilder's ``repositories.conf`` lists them (it decides which
#: provider of a virtual package comes first).
FEED_ORDER: tuple[tuple[str, str], ...] = (
    ("target", "packages"),
    ("arch", "base"),
    ("target", "kmods"),
    *(("arch", feed) for feed in ARCH_FEEDS if feed != "base"),
)
#: Decoded feeds kept in memory (a feed of a real arch is ~10,000 records).
FEED_CACHE_SIZE = 64


def _kernel(data: dict[str, str] | None) -> LinuxKernel | None:
    return LinuxKernel(data["version"], data["release"], data["vermagic"]) if data else None


def _entry(row: Profile) -> ProfileEntry:
    return parse_profile_entry(
        row.name,
        {
            "titles": row.titles,
            "device_packages": row.device_packages,
            "supported_devices": row.supported_devices,
            "image_prefix": row.image_prefix,
            "images": row.images,
            **({"file_size_limits": row.file_size_limits} if row.file_size_limits is not None else {}),
        },
    )


class Catalog:
    """Read access to the catalog; thread-safe, one instance per process."""

    def __init__(self, session_factory: sessionmaker[Session], distros: dict[str, DistroSettings]) -> None:
        self._session_factory = session_factory
        self._distros = distros
        self._lock = threading.Lock()
        self._indexes: dict[tuple[str, str, str], tuple[tuple[Any, ...], PackageIndex]] = {}
        self._feeds: OrderedDict[tuple[int, str], list[PackageRecord]] = OrderedDict()

    # -- distributions, branches, versions ----------------------------------------------------------

    def distros(self) -> list[str]:
        return list(self._distros)

    def branches(self, distro: str) -> dict[str, BranchInfo]:
        """Present branches, newest first (``SNAPSHOT`` first), keyed by name."""
        settings = self._distros.get(distro)
        if settings is None:
            return {}
        changes = package_changes_for(settings)
        with self._session_factory() as session:
            branch_rows = session.scalars(
                select(Branch).where(Branch.distro == distro, Branch.present.is_(True))
            ).all()
            versions = session.execute(
                select(Version.branch, Version.version, Version.snapshot).where(
                    Version.distro == distro, Version.present.is_(True)
                )
            ).all()
            targets = session.execute(
                select(Version.branch, Target.version, Target.target, Target.arch_packages)
                .join(Version, and_(Version.distro == Target.distro, Version.version == Target.version))
                .where(Target.distro == distro, Target.present.is_(True), Version.present.is_(True))
            ).all()
        result: dict[str, BranchInfo] = {}
        for row in sorted(branch_rows, key=lambda row: release_key(row.name), reverse=True):
            releases = sorted(
                (v for branch, v, snapshot in versions if branch == row.name and not snapshot),
                key=release_key,
                reverse=True,
            )
            snapshots = [v for branch, v, snapshot in versions if branch == row.name and snapshot]
            if not releases and not snapshots:
                continue
            newest = sorted({v for b, v, *_ in targets if b == row.name}, key=release_key)
            target_map: dict[str, str] = {}
            for version in newest:  # later (newer) versions override the arch of a target
                target_map.update({t: arch for b, v, t, arch in targets if b == row.name and v == version})
            # Settings win over what the last sync stored, so a changed offset needs no re-sync.
            branch_off_rev = (
                None if row.snapshot else settings.branch_off_rev.get(row.name, row.branch_off_rev)
            )
            result[row.name] = BranchInfo(
                name=row.name,
                path=row.path,
                snapshot=row.snapshot,
                enabled=row.enabled,
                branch_off_rev=branch_off_rev,
                versions=[*releases, *snapshots],
                targets=dict(sorted(target_map.items())),
                package_changes=changes_for_branch(
                    changes, snapshot=row.snapshot, branch_off_rev=branch_off_rev
                ),
            )
        return result

    def latest(self, distro: str) -> list[str]:
        """The newest release of each enabled release branch, newest first; a branch with only
        release candidates contributes its newest candidate."""
        latest = []
        for branch in self.branches(distro).values():
            if not branch.enabled or branch.snapshot:
                continue
            releases = [v for v in branch.versions if "SNAPSHOT" not in v.upper()]
            final = [v for v in releases if "-" not in v]
            if final or releases:
                latest.append((final or releases)[0])
        return sorted(latest, key=release_key, reverse=True)

    def version(self, distro: str, version: str) -> VersionInfo | None:
        with self._session_factory() as session:
            row = session.scalars(
                select(Version).where(
                    Version.distro == distro, Version.version == version, Version.present.is_(True)
                )
            ).one_or_none()
        if row is None:
            return None
        manager: PackageManager = "apk" if row.package_manager == "apk" else "opkg"
        return VersionInfo(distro, row.version, row.branch, row.path, row.snapshot, manager)

    # -- targets and profiles -------------------------------------------------------------------------

    def _target_row(self, session: Session, distro: str, version: str, target: str) -> Target | None:
        return session.scalars(
            select(Target).where(
                Target.distro == distro,
                Target.version == version,
                Target.target == target,
                Target.present.is_(True),
            )
        ).one_or_none()

    def target(self, distro: str, version: str, target: str) -> TargetInfo | None:
        with self._session_factory() as session:
            row = self._target_row(session, distro, version, target)
            if row is None:
                return None
            profiles = session.scalars(select(Profile).where(Profile.target_id == row.id)).all()
            entries = {profile.name: _entry(profile) for profile in profiles}
        manager: PackageManager = "apk" if row.package_manager == "apk" else "opkg"
        return TargetInfo(
            distro=distro,
            version=version,
            target=target,
            arch_packages=row.arch_packages,
            version_code=row.version_code,
            source_date_epoch=row.source_date_epoch,
            default_packages=tuple(row.default_packages),
            linux_kernel=_kernel(row.linux_kernel),
            package_manager=manager,
            metadata=dict(row.profiles_meta),
            profiles=dict(sorted(entries.items())),
        )

    def profile(self, distro: str, version: str, target: str, name: str) -> ProfileEntry | None:
        """The profile a client means by ``name``: the exact id; else with ``,`` → ``_`` (board names
        as LuCI sends them); else the profile listing ``name`` in ``supported_devices``; else, on a target
        whose only profile is ``generic`` (x86), ``generic``."""
        underscored = name.replace(",", "_")
        with self._session_factory() as session:
            row = self._target_row(session, distro, version, target)
            if row is None:
                return None
            for candidate in dict.fromkeys((name, underscored)):
                found = session.scalars(
                    select(Profile).where(Profile.target_id == row.id, Profile.name == candidate)
                ).one_or_none()
                if found is not None:
                    return _entry(found)
            device = session.scalars(
                select(Profile)
                .join(SupportedDevice, SupportedDevice.profile_id == Profile.id)
                .where(SupportedDevice.target_id == row.id, SupportedDevice.device_key == underscored)
                .order_by(Profile.name)
                .limit(1)
            ).first()
            if device is not None:
                return _entry(device)
            only = session.scalars(select(Profile).where(Profile.target_id == row.id).limit(2)).all()
            if len(only) == 1 and only[0].name == "generic":
                return _entry(only[0])
        return None

    # -- package indexes ------------------------------------------------------------------------------

    def _decoded(self, feed_id: int, sha256: str, session: Session) -> list[PackageRecord]:
        key = (feed_id, sha256)
        with self._lock:
            cached = self._feeds.get(key)
            if cached is not None:
                self._feeds.move_to_end(key)
                return cached
        blob = session.scalars(select(PackageFeed.records).where(PackageFeed.id == feed_id)).one()
        records = decode_records(blob)
        with self._lock:
            self._feeds[key] = records
            while len(self._feeds) > FEED_CACHE_SIZE:
                self._feeds.popitem(last=False)
        return records

    def _feed_records(
        self, session: Session, distro: str, version: str, selectors: list[tuple[str, str]]
    ) -> list[tuple[str, str, list[PackageRecord]]]:
        """``(scope, feed, records)`` of present feeds matching ``(scope, key)`` selectors, in build order."""
        rows = session.execute(
            select(PackageFeed.id, PackageFeed.scope, PackageFeed.feed, PackageFeed.index_sha256).where(
                PackageFeed.distro == distro,
                PackageFeed.version == version,
                PackageFeed.present.is_(True),
                or_(*(and_(PackageFeed.scope == scope, PackageFeed.key == key) for scope, key in selectors)),
            )
        ).all()
        order = {entry: position for position, entry in enumerate(FEED_ORDER)}
        rows = sorted(rows, key=lambda row: (order.get((row.scope, row.feed), len(order)), row.feed))
        return [(row.scope, row.feed, self._decoded(row.id, row.index_sha256, session)) for row in rows]

    def package_index(self, distro: str, version: str, target: str) -> PackageIndex:
        """Everything a build of ``target`` can install (target packages, kmods, the arch feeds), plus
        the ImageBuilder's own ``kernel``/``libc`` with unknown versions where no index lists them.
        An unknown target gives an empty index."""
        with self._session_factory() as session:
            row = self._target_row(session, distro, version, target)
            if row is None:
                return PackageIndex([], "opkg")
            fingerprint_rows = session.execute(
                select(PackageFeed.id, PackageFeed.index_sha256).where(
                    PackageFeed.distro == distro,
                    PackageFeed.version == version,
                    PackageFeed.present.is_(True),
                    or_(
                        and_(PackageFeed.scope == "target", PackageFeed.key == target),
                        and_(PackageFeed.scope == "arch", PackageFeed.key == row.arch_packages),
                    ),
                )
            ).all()
            fingerprint = (row.package_manager, *sorted(tuple(r) for r in fingerprint_rows))
            key = (distro, version, target)
            with self._lock:
                cached = self._indexes.get(key)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            feeds = self._feed_records(
                session, distro, version, [("target", target), ("arch", row.arch_packages)]
            )
        records = [record for _, _, feed_records in feeds for record in feed_records]
        names = {record.name for record in records}
        records += [
            PackageRecord(name=name, version="") for name in IMAGEBUILDER_PACKAGES if name not in names
        ]
        manager: PackageManager = "apk" if row.package_manager == "apk" else "opkg"
        index = PackageIndex(records, manager)
        with self._lock:
            self._indexes[key] = (fingerprint, index)
        return index

    def arch_index(self, distro: str, version: str, arch: str) -> dict[str, str]:
        """Flat ``name → version`` over the feeds of ``arch`` (``/json/v1/…/packages/{arch}-index.json``)."""
        with self._session_factory() as session:
            feeds = self._feed_records(session, distro, version, [("arch", arch)])
        return _flat([record for _, _, records in feeds for record in records])

    def target_index(self, distro: str, version: str, target: str) -> dict[str, Any]:
        """``{"architecture", "packages"}`` over target packages and kmods (``…/targets/{t}/index.json``)."""
        with self._session_factory() as session:
            row = self._target_row(session, distro, version, target)
            if row is None:
                return {"architecture": "", "packages": {}}
            feeds = self._feed_records(session, distro, version, [("target", target)])
        return {
            "architecture": row.arch_packages,
            "packages": _flat([record for _, _, records in feeds for record in records]),
        }

    def invalidate(self) -> None:
        """Drop every cached index (the hash check makes this optional; tests and admin tools use it)."""
        with self._lock:
            self._indexes.clear()
            self._feeds.clear()


def _flat(records: list[PackageRecord]) -> dict[str, str]:
    """ABI-free name → version; the first feed in build order wins a name listed twice."""
    flat: dict[str, str] = {}
    for record in records:
        flat.setdefault(record.stripped_name, record.version)
    return dict(sorted(flat.items()))
