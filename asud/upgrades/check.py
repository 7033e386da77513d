"""Answer "is there something newer for this device?" from the catalog, without building anything.

Steps: the installed version and target must be known; every sent package must exist in the installed
version's index (else ``UnknownPackages``); the policy picks the version to offer; each sent package whose
version there is **newer** (by the package manager of that version) is an upgrade; the sent names are
carried to the new version through the branch's package changes and checked installable there (opkg: the
dependency resolver with the new defaults, as an ``upgrade-request`` would build them; apk: names only).

The catalog's metadata is read on the reactor thread (it is in memory); package indexes arrive as
Deferreds; everything that walks an index (unknown-name suggestions, version comparison, resolving) runs
in the reactor's thread pool (``deferToThread``), on indexes that are never modified once built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from asud.build.normalise import diff_packages
from asud.catalog.resolver import PackageIndex, resolve
from asud.config import PackageChange
from asud.errors import BadRequest, PackageConflict, UnknownPackages
from asud.upgrades.package_changes import applicable_changes, apply_package_changes
from asud.upgrades.policy import UpgradePolicy, choose_target_version, is_snapshot
from asud.upstream.version_order import compare_packages, revision_number

if TYPE_CHECKING:
    from asud.catalog.info import BranchInfo, TargetInfo, VersionInfo

__all__ = ["ALWAYS_KNOWN", "UpgradeCatalog", "UpgradeCheck", "check_upgrade"]

#: Installed packages never reported unknown: the ImageBuilder brings them, indexes may not list them.
ALWAYS_KNOWN = frozenset({"kernel", "libc", "base-files"})


class UpgradeCatalog(Protocol):
    """The part of ``asud.catalog.Catalog`` an upgrade check reads."""

    def version(self, distro: str, version: str) -> VersionInfo | None: ...
    def target(self, distro: str, version: str, target: str) -> TargetInfo | None: ...
    def branches(self, distro: str) -> Mapping[str, BranchInfo]: ...
    def package_index(self, distro: str, version: str, target: str) -> defer.Deferred[PackageIndex]: ...


def _pair(value: Any) -> tuple[str, str]:
    new, old = value
    return (str(new), str(old))


@attrs.frozen(kw_only=True)
class UpgradeCheck:
    """What a device can move to. ``version`` is set only when a newer version is offered; ``upgrades``
    maps a sent name to ``(new_version, installed_version)``; ``packages`` are the sent names (ABI-free)
    as the offered (or installed) version names them, minus ``unavailable`` (name → reason)."""

    version: str | None
    version_code: str
    upgrades: dict[str, tuple[str, str]]
    packages: list[str]
    package_changes: list[PackageChange] = attrs.field(factory=list)
    unavailable: dict[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form for storage (:meth:`from_json` reads it back)."""
        return {
            "version": self.version,
            "version_code": self.version_code,
            "upgrades": {name: list(pair) for name, pair in self.upgrades.items()},
            "packages": list(self.packages),
            "package_changes": [change.to_json() for change in self.package_changes],
            "unavailable": dict(self.unavailable),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpgradeCheck:
        return cls(
            version=data.get("version"),
            version_code=str(data.get("version_code", "")),
            upgrades={name: _pair(pair) for name, pair in data.get("upgrades", {}).items()},
            packages=list(data.get("packages", [])),
            package_changes=[PackageChange(**change) for change in data.get("package_changes", [])],
            unavailable=dict(data.get("unavailable", {})),
        )


def check_upgrade(
    catalog: UpgradeCatalog,
    *,
    distro: str,
    version: str,
    target: str,
    packages: Mapping[str, str] | None,
    revision: str | None,
    policy: UpgradePolicy,
) -> defer.Deferred[UpgradeCheck | None]:
    """The upgrade offer for a device; fires with ``None`` when it is up to date.

    ``packages`` maps installed names to versions (an empty version is never an upgrade); ``revision`` is
    the installed ``rNNNNN-hash`` (needed to tell whether a snapshot is newer). Fails with ``BadRequest``
    for an unknown version or target and ``UnknownPackages`` for packages the installed version does not
    know.
    """
    return defer.ensureDeferred(_check(catalog, distro, version, target, dict(packages or {}), revision,
                                       policy))


async def _check(
    catalog: UpgradeCatalog,
    distro: str,
    version: str,
    target: str,
    sent: dict[str, str],
    revision: str | None,
    policy: UpgradePolicy,
) -> UpgradeCheck | None:
    installed = catalog.version(distro, version)
    if installed is None:
        raise BadRequest(f"Unsupported version: {version}")
    installed_target = catalog.target(distro, version, target)
    if installed_target is None:
        raise BadRequest(f"Unsupported target: {target}")
    installed_index = await catalog.package_index(distro, version, target)
    await deferToThread(_check_known, installed_index, sent)

    installed_revision = revision_number(revision) if revision else None
    if installed_revision is None and not installed.snapshot:
        installed_revision = revision_number(installed_target.version_code)
    branches = catalog.branches(distro)
    offered = _offer(catalog, distro, target, version, installed_revision, branches, policy)
    changes: list[PackageChange] = []
    new_index = installed_index
    if offered is not None:
        new_index = await catalog.package_index(distro, offered.version, target)
        table = branches[_branch_of(catalog, distro, offered.version)].package_changes
        from_revision = _effective_revision(installed_revision, branches.get(installed.branch))
        changes = applicable_changes(table, from_revision, revision_number(offered.version_code))
    return await deferToThread(_compare, installed_index, new_index, installed_target, offered, sent, changes)


def _compare(
    installed_index: PackageIndex,
    new_index: PackageIndex,
    installed_target: TargetInfo,
    offered: TargetInfo | None,
    sent: Mapping[str, str],
    changes: list[PackageChange],
) -> UpgradeCheck | None:
    """The answer, from the two indexes (runs in a thread: it compares versions and resolves)."""
    new_target = offered or installed_target
    names = list(dict.fromkeys(_abi_free(installed_index, name) for name in sent))
    if offered is not None:
        names = apply_package_changes(names, changes, None, None)
    upgrades = _upgrades(new_index, sent, installed_index, new_target)
    unavailable = _unavailable(new_index, new_target, names)
    if offered is None and not upgrades:
        return None
    return UpgradeCheck(
        version=offered.version if offered else None,
        version_code=new_target.version_code,
        upgrades=upgrades,
        packages=sorted(name for name in names if name not in unavailable),
        package_changes=changes,
        unavailable=unavailable,
    )


def _check_known(index: PackageIndex, sent: Mapping[str, str]) -> None:
    unknown = [name for name in sent if name not in ALWAYS_KNOWN and name not in index]
    if unknown:
        raise UnknownPackages(unknown, {name: index.suggestions(name) for name in unknown})


def _abi_free(index: PackageIndex, name: str) -> str:
    """``libubox20230523`` → ``libubox`` (as the installed index knows it); other names unchanged."""
    for record in index.named(name):
        if record.name == name:
            return record.stripped_name
    return name


def _branch_of(catalog: UpgradeCatalog, distro: str, version: str) -> str:
    info = catalog.version(distro, version)
    assert info is not None, version
    return info.branch


def _effective_revision(revision: int | None, branch: BranchInfo | None) -> int | None:
    """The newest main-line revision a system contains: a release branch stops taking main's changes
    where it split off, so its own later revision numbers say nothing about the change table."""
    if revision is None or branch is None or branch.snapshot or branch.branch_off_rev is None:
        return revision
    return min(revision, branch.branch_off_rev)


def _offer(
    catalog: UpgradeCatalog,
    distro: str,
    target: str,
    version: str,
    installed_revision: int | None,
    branches: Mapping[str, BranchInfo],
    policy: UpgradePolicy,
) -> TargetInfo | None:
    """The target of the version the policy picks among enabled versions that build ``target``."""
    available = [v for branch in branches.values() if branch.enabled for v in branch.versions]
    targets: dict[str, TargetInfo | None] = {}

    def target_of(candidate: str) -> TargetInfo | None:
        if candidate not in targets:
            targets[candidate] = catalog.target(distro, candidate, target)
        return targets[candidate]

    # Only snapshots need their revision to be compared; releases are ordered by name alone.
    revisions: dict[str, int | None] = {}
    for candidate in available:
        if is_snapshot(candidate):
            info = target_of(candidate)
            revisions[candidate] = revision_number(info.version_code) if info else None
    while available:
        chosen = choose_target_version(
            version, available, policy, installed_revision=installed_revision, revisions=revisions
        )
        if chosen is None:
            return None
        info = target_of(chosen)
        if info is not None:
            return info
        available.remove(chosen)  # the target was dropped in that version: look further
    return None


def _upgrades(
    new_index: PackageIndex, sent: Mapping[str, str], installed_index: PackageIndex, new_target: TargetInfo
) -> dict[str, tuple[str, str]]:
    """Sent packages whose version in ``new_index`` is newer by that version's package manager."""
    manager = new_target.package_manager
    upgrades = {}
    for name, installed_version in sent.items():
        if not installed_version:
            continue
        offered = new_index.named(_abi_free(installed_index, name))
        if not offered or not offered[0].version:
            continue
        if compare_packages(offered[0].version, installed_version, manager) > 0:
            upgrades[name] = (offered[0].version, installed_version)
    return dict(sorted(upgrades.items()))


def _unavailable(index: PackageIndex, target: TargetInfo, names: Iterable[str]) -> dict[str, str]:
    """Names that cannot be installed on ``target``'s version, each with the reason."""
    names = list(names)
    unavailable = {name: f"not available in {target.version}" for name in names if name not in index}
    if not index.detailed:
        return unavailable  # apk era: the index has names only, nothing more can be checked
    wanted = [name for name in names if name not in unavailable]
    if _conflict(index, target, wanted) is None:
        return unavailable
    # Something clashes: add packages one by one and blame each that breaks the set built so far.
    accepted: list[str] = []
    for name in wanted:
        problem = _conflict(index, target, [*accepted, name])
        if problem is None:
            accepted.append(name)
        else:
            unavailable[name] = problem
    return unavailable


def _conflict(index: PackageIndex, target: TargetInfo, names: list[str]) -> str | None:
    """Why ``names`` (the complete package list, defaults not named are removed) cannot be installed."""
    try:
        resolve(
            index,
            default_packages=target.default_packages,
            profile_packages=(),
            requested=diff_packages(names, target.default_packages),
        )
    except (PackageConflict, UnknownPackages) as error:
        return error.detail
    return None
