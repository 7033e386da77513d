"""The catalog's data: immutable records of what a load read and verified, shared between generations.

A refresh that finds a target's signed list unchanged reuses that target's record as is (same object),
so an unchanged catalog costs one conditional request per target and no parsing. Each record also says
where its package feeds live (``FeedGroup``) and carries the fingerprint that names their content, so a
feed parsed once stays valid across refreshes until upstream changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from asud.catalog.info import TargetInfo, VersionInfo
from asud.upstream.records import PackageManager, ProfilesDocument
from asud.upstream.usign import PublicKey

__all__ = [
    "ARCH_FEEDS",
    "ArchData",
    "BranchData",
    "DistroData",
    "FeedGroup",
    "FeedSource",
    "TargetData",
    "VersionData",
    "arch_group",
    "target_data",
]

#: Architecture feeds read for every version (``packages/<arch>/<feed>/``); a 404 means "not built".
ARCH_FEEDS = ("base", "packages", "luci", "routing", "telephony")

Scope = Literal["target", "arch"]


@attrs.frozen
class FeedSource:
    """One feed directory: ``url`` ends with ``/``; ``sums_prefix`` is its path in the signed list."""

    feed: str
    url: str
    sums_prefix: str


@attrs.frozen
class FeedGroup:
    """The feeds loaded together: a target's own (``packages``, ``kmods``) or an architecture's.

    ``key`` names the content (distro, version, scope, name, fingerprint of the signed files, manager):
    equal keys mean equal feeds, whichever catalog generation asks.
    """

    key: tuple[str, ...]
    scope: Scope
    name: str
    url: str
    manager: PackageManager
    sources: tuple[FeedSource, ...]
    #: The verified ``sha256sums`` of the directory (apk indexes are checked against it).
    sums: Mapping[str, str] | None = attrs.field(eq=False, repr=False)
    keys: tuple[PublicKey, ...] = attrs.field(eq=False, repr=False)


@attrs.frozen
class TargetData:
    info: TargetInfo
    #: sha256 of the verified ``sha256sums``: it names every file below the target.
    sums_sha256: str
    #: sha256 of the ``profiles.json`` this record was made from.
    profiles_sha256: str
    #: ``supported_devices`` entry with ``,`` → ``_`` → the profile that lists it (first by name).
    devices: Mapping[str, str] = attrs.field(repr=False)
    feeds: FeedGroup


@attrs.frozen
class ArchData:
    arch: str
    #: Names the content of the architecture's feeds (its signed list, or the feeds' signatures).
    fingerprint: str
    feeds: FeedGroup


@attrs.frozen
class VersionData:
    info: VersionInfo
    #: sha256 of ``.targets.json`` as read.
    targets_sha256: str
    targets: Mapping[str, TargetData]
    arches: Mapping[str, ArchData]

    def fingerprint(self) -> tuple[object, ...]:
        return (
            self.info,
            self.targets_sha256,
            tuple((name, data.sums_sha256) for name, data in sorted(self.targets.items())),
            tuple((name, data.fingerprint) for name, data in sorted(self.arches.items())),
        )


@attrs.frozen
class BranchData:
    name: str
    path: str
    snapshot: bool
    enabled: bool


@attrs.frozen
class DistroData:
    name: str
    upstream: str
    versions: Mapping[str, VersionData]
    branches: Mapping[str, BranchData]
    versions_sha256: str = ""

    def fingerprint(self) -> tuple[object, ...]:
        return (
            self.upstream,
            self.versions_sha256,
            tuple((name, data.fingerprint()) for name, data in sorted(self.versions.items())),
            tuple(sorted(self.branches.items())),
        )


def _package_manager(sums: Mapping[str, str], default_packages: tuple[str, ...]) -> PackageManager:
    """apk when the target has an apk index (or defaults pull in apk), else opkg."""
    if "packages/packages.adb" in sums:
        return "apk"
    if "packages/Packages" in sums:
        return "opkg"
    return "apk" if any(name.startswith("apk-") for name in default_packages) else "opkg"


def target_data(
    *,
    distro: str,
    version: str,
    target: str,
    url: str,
    document: ProfilesDocument,
    sums: Mapping[str, str],
    sums_sha256: str,
    profiles_sha256: str,
    keys: tuple[PublicKey, ...],
) -> TargetData:
    """A target's record from its verified ``profiles.json`` and signed list (CPU work: in a thread)."""
    manager = _package_manager(sums, document.default_packages)
    profiles = dict(sorted(document.profiles.items()))
    info = TargetInfo(
        distro=distro,
        version=version,
        target=target,
        arch_packages=document.arch_packages,
        version_code=document.version_code,
        source_date_epoch=document.source_date_epoch,
        default_packages=tuple(document.default_packages),
        linux_kernel=document.linux_kernel,
        package_manager=manager,
        metadata={key: value for key, value in document.raw.items() if key != "profiles"},
        profiles=profiles,
    )
    devices: dict[str, str] = {}
    for name, entry in profiles.items():
        for device in entry.supported_devices:
            devices.setdefault(device.replace(",", "_"), name)
    sources = [FeedSource("packages", f"{url}/packages/", "packages/")]
    if document.linux_kernel is not None:
        kmods = document.linux_kernel.kmods_dir
        sources.append(FeedSource("kmods", f"{url}/kmods/{kmods}/", f"kmods/{kmods}/"))
    group = FeedGroup(
        key=(distro, version, "target", target, sums_sha256, manager),
        scope="target",
        name=target,
        url=url,
        manager=manager,
        sources=tuple(sources),
        sums=dict(sums),
        keys=keys,
    )
    return TargetData(info=info, sums_sha256=sums_sha256, profiles_sha256=profiles_sha256, devices=devices,
                      feeds=group)


def arch_group(
    *,
    distro: str,
    version: str,
    arch: str,
    url: str,
    manager: PackageManager,
    fingerprint: str,
    sums: Mapping[str, str] | None,
    keys: tuple[PublicKey, ...],
) -> ArchData:
    """An architecture's record: where its feeds are and what names their content."""
    sources = tuple(FeedSource(feed, f"{url}/{feed}/", f"{feed}/") for feed in ARCH_FEEDS)
    group = FeedGroup(
        key=(distro, version, "arch", arch, fingerprint, manager),
        scope="arch",
        name=arch,
        url=url,
        manager=manager,
        sources=sources,
        sums=dict(sums) if sums is not None else None,
        keys=keys,
    )
    return ArchData(arch=arch, fingerprint=fingerprint, feeds=group)
