"""What the API, request validation and the builder ask the catalog — answered from memory.

Versions, targets and profiles are plain lookups in the data a load verified (``asud.catalog.load``).
Package data needs the feeds, which are read on first use: ``package_index``, ``arch_index`` and
``target_index`` return Deferreds (fetched, verified and parsed in a thread the first time, then from
the bounded LRU in ``asud.catalog.feeds``).

A ``Catalog`` never changes; a refresh makes a new one (``generation`` + 1) and the service swaps it in.
Answer caches elsewhere can key on ``generation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread

from asud.catalog.data import DistroData, TargetData
from asud.catalog.feeds import FeedCache, flat_versions
from asud.catalog.info import BranchInfo, TargetInfo, VersionInfo
from asud.catalog.package_changes import branch_off_rev_for, changes_for_branch, package_changes_for
from asud.catalog.resolver import PackageIndex
from asud.config import DistroSettings
from asud.upstream.records import ProfileEntry
from asud.upstream.version_order import release_key

__all__ = ["BranchInfo", "Catalog", "TargetInfo", "VersionInfo"]


class Catalog:
    """One generation of the catalog: every configured distribution as its last load saw it."""

    def __init__(self, distros: Mapping[str, DistroData], settings: Mapping[str, DistroSettings],
                 feeds: FeedCache, *, generation: int = 1) -> None:
        self._data = dict(distros)
        self._settings = dict(settings)
        self.feeds = feeds
        #: Bumps on every refresh that changed something.
        self.generation = generation
        self._branches = {name: self._make_branches(name) for name in self._settings}

    def data(self, distro: str) -> DistroData | None:
        """What the last load read for ``distro`` (``None``: nothing, e.g. no keys configured)."""
        return self._data.get(distro)

    def fingerprint(self) -> tuple[object, ...]:
        """Equal for two catalogs made from the same upstream bytes."""
        return tuple((name, data.fingerprint()) for name, data in sorted(self._data.items()))

    # -- distributions, branches, versions ----------------------------------------------------------

    def distros(self) -> list[str]:
        return list(self._settings)

    def branches(self, distro: str) -> dict[str, BranchInfo]:
        """Present branches, newest first (``SNAPSHOT`` first), keyed by name."""
        return dict(self._branches.get(distro, {}))

    def _make_branches(self, distro: str) -> dict[str, BranchInfo]:
        settings = self._settings[distro]
        data = self._data.get(distro)
        if data is None:
            return {}
        changes = package_changes_for(settings)
        result: dict[str, BranchInfo] = {}
        for branch in sorted(data.branches.values(), key=lambda row: release_key(row.name), reverse=True):
            versions = [v for v in data.versions.values() if v.info.branch == branch.name]
            releases = sorted((v.info.version for v in versions if not v.info.snapshot), key=release_key,
                              reverse=True)
            snapshots = [v.info.version for v in versions if v.info.snapshot]
            if not releases and not snapshots:
                continue
            target_map: dict[str, str] = {}
            for version in sorted(versions, key=lambda v: release_key(v.info.version)):
                # later (newer) versions override the arch of a target
                target_map.update({name: t.info.arch_packages for name, t in version.targets.items()})
            branch_off_rev = None if branch.snapshot else branch_off_rev_for(settings, branch.name)
            result[branch.name] = BranchInfo(
                name=branch.name,
                path=branch.path,
                snapshot=branch.snapshot,
                enabled=branch.enabled,
                branch_off_rev=branch_off_rev,
                versions=[*releases, *snapshots],
                targets=dict(sorted(target_map.items())),
                package_changes=changes_for_branch(
                    changes, snapshot=branch.snapshot, branch_off_rev=branch_off_rev
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
        data = self._data.get(distro)
        found = data.versions.get(version) if data else None
        return found.info if found else None

    # -- targets and profiles -----------------------------------------------------------------------

    def _target(self, distro: str, version: str, target: str) -> TargetData | None:
        data = self._data.get(distro)
        found = data.versions.get(version) if data else None
        return found.targets.get(target) if found else None

    def target(self, distro: str, version: str, target: str) -> TargetInfo | None:
        found = self._target(distro, version, target)
        return found.info if found else None

    def profile(self, distro: str, version: str, target: str, name: str) -> ProfileEntry | None:
        """The profile a client means by ``name``: the exact id; else with ``,`` → ``_`` (board names
        as LuCI sends them); else the profile listing ``name`` in ``supported_devices``; else, on a target
        whose only profile is ``generic`` (x86), ``generic``."""
        found = self._target(distro, version, target)
        if found is None:
            return None
        profiles = found.info.profiles
        underscored = name.replace(",", "_")
        for candidate in (name, underscored):
            if candidate in profiles:
                return profiles[candidate]
        by_device = found.devices.get(underscored)
        if by_device is not None:
            return profiles[by_device]
        if list(profiles) == ["generic"]:
            return profiles["generic"]
        return None

    # -- package data (Deferreds: feeds are read on first use) -----------------------------------------

    def package_index(self, distro: str, version: str, target: str) -> Deferred[PackageIndex]:
        """Everything a build of ``target`` can install (target packages, kmods, the arch feeds), plus
        the ImageBuilder's own ``kernel``/``libc`` with unknown versions where no index lists them.
        An unknown target gives an empty index; feeds that fail verification fail the Deferred."""
        found = self._target(distro, version, target)
        if found is None:
            return succeed(PackageIndex([], "opkg"))
        groups = [found.feeds]
        arch = self._data[distro].versions[version].arches.get(found.info.arch_packages)
        if arch is not None:
            groups.append(arch.feeds)
        return self.feeds.index(groups, found.info.package_manager)

    def arch_index(self, distro: str, version: str, arch: str) -> Deferred[dict[str, str]]:
        """Flat ``name → version`` over the feeds of ``arch`` (``/json/v1/…/packages/{arch}-index.json``)."""
        data = self._data.get(distro)
        found = data.versions.get(version) if data else None
        arch_data = found.arches.get(arch) if found else None
        if arch_data is None:
            return succeed({})
        return self.feeds.group(arch_data.feeds).addCallback(
            lambda loaded: deferToThread(flat_versions, [loaded])
        )

    def target_index(self, distro: str, version: str, target: str) -> Deferred[dict[str, Any]]:
        """``{"architecture", "packages"}`` over target packages and kmods (``…/targets/{t}/index.json``)."""
        found = self._target(distro, version, target)
        if found is None:
            return succeed({"architecture": "", "packages": {}})
        architecture = found.info.arch_packages

        def flat(loaded: Any) -> Deferred[dict[str, Any]]:
            return deferToThread(flat_versions, [loaded]).addCallback(
                lambda packages: {"architecture": architecture, "packages": packages}
            )

        return self.feeds.group(found.feeds).addCallback(flat)

    def invalidate(self) -> None:
        """Drop every loaded feed and index (they are reloaded on next use)."""
        self.feeds.clear()
