"""The catalog as the pages show it: versions to choose from, every device of a version, one device's
details (stock downloads, packages, build options) and the facts of the about page.

Everything here reads the in-memory metadata of :class:`asud.catalog.Catalog` (no package feeds, so it
is synchronous) and takes plain values (distro, upstream URL) from the caller; nothing reads settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from asud.http.web_devices import Device, DeviceIndex, title_text
from asud.upstream.records import ProfileEntry
from asud.upstream.version_order import release_key

#: Image types written to a block device whose root partition size the ImageBuilder can set
#: (``ROOTFS_PARTSIZE``); raw-flash images (sysupgrade, factory) have a fixed layout.
PARTITIONED_IMAGE_TYPES = frozenset({"combined", "combined-efi", "sdcard", "ext4-combined", "rootfs"})


class CatalogReader(Protocol):
    """The part of ``asud.catalog.Catalog`` the pages read."""

    def branches(self, distro: str) -> dict[str, Any]: ...
    def latest(self, distro: str) -> list[str]: ...
    def version(self, distro: str, version: str) -> Any: ...
    def target(self, distro: str, version: str, target: str) -> Any: ...
    def profile(self, distro: str, version: str, target: str, name: str) -> ProfileEntry | None: ...


@dataclass(frozen=True, slots=True)
class VersionChoice:
    """One entry of the version menu."""

    version: str
    branch: str
    #: ``stable`` (newest release of a branch), ``release`` (older or candidate) or ``snapshot``.
    kind: str

    @property
    def snapshot(self) -> bool:
        return self.kind == "snapshot"

    @property
    def label(self) -> str:
        if self.kind == "snapshot":
            return f"{self.version} (development snapshot)"
        return self.version


def version_choices(catalog: CatalogReader, distro: str) -> list[VersionChoice]:
    """Stable releases first (newest branch first), then older releases, then snapshots; the first entry
    is what the builder selects by default."""
    latest = catalog.latest(distro)
    stable: list[VersionChoice] = []
    older: list[VersionChoice] = []
    snapshots: list[VersionChoice] = []
    for branch in catalog.branches(distro).values():
        if not branch.enabled:
            continue
        for version in branch.versions:
            if branch.snapshot or "SNAPSHOT" in version.upper():
                snapshots.append(VersionChoice(version, branch.name, "snapshot"))
            elif version in latest:
                stable.append(VersionChoice(version, branch.name, "stable"))
            else:
                older.append(VersionChoice(version, branch.name, "release"))
    stable.sort(key=lambda choice: release_key(choice.version), reverse=True)
    older.sort(key=lambda choice: release_key(choice.version), reverse=True)
    snapshots.sort(key=lambda choice: release_key(choice.version), reverse=True)
    return [*stable, *older, *snapshots]


def branch_targets(catalog: CatalogReader, distro: str, version: str) -> list[str]:
    """Targets the branch of ``version`` lists (a target missing in this very version is skipped later)."""
    for branch in catalog.branches(distro).values():
        if version in branch.versions:
            return sorted(branch.targets)
    return []


def device_index(catalog: CatalogReader, distro: str, version: str) -> DeviceIndex:
    """Every device of every target of ``version`` (one catalog read per target)."""
    devices = []
    for target in branch_targets(catalog, distro, version):
        info = catalog.target(distro, version, target)
        if info is None:
            continue
        for profile in info.profiles.values():
            devices.append(
                Device(
                    target=target,
                    id=profile.id,
                    titles=tuple(title_text(title) for title in profile.titles) or (profile.id,),
                    supported_devices=tuple(profile.supported_devices),
                )
            )
    return DeviceIndex(devices)


def stock_image_url(upstream_url: str, version_path: str, target: str, name: str) -> str:
    """Where the download server keeps a stock image (the Firmware Selector's links)."""
    return f"{upstream_url.rstrip('/')}/{version_path.strip('/')}/targets/{target}/{name}"


def device_details(
    catalog: CatalogReader, distro: str, version: str, target: str, profile_id: str, *, upstream_url: str
) -> dict[str, Any] | None:
    """What the builder shows once a device is picked; ``None`` when the version has no such device."""
    version_info = catalog.version(distro, version)
    target_info = catalog.target(distro, version, target) if version_info is not None else None
    profile = target_info.profiles.get(profile_id) if target_info is not None else None
    if profile is None:
        return None
    images = [
        {
            "name": image.name,
            "type": image.type,
            "filesystem": image.filesystem,
            "size": image.size,
            "sha256": image.sha256,
            "url": stock_image_url(upstream_url, version_info.path, target, image.name),
        }
        for image in profile.images
    ]
    filesystems = sorted({image.filesystem for image in profile.images if image.filesystem})
    partitioned = any(
        image.type in PARTITIONED_IMAGE_TYPES or image.filesystem == "ext4" for image in profile.images
    )
    limits = profile.file_size_limits or {}
    return {
        "version": version,
        "version_code": target_info.version_code,
        "snapshot": bool(version_info.snapshot),
        "package_manager": target_info.package_manager,
        "target": target,
        "id": profile.id,
        "title": title_text(profile.titles[0]) if profile.titles else profile.id,
        "titles": [title_text(title) for title in profile.titles],
        "supported_devices": list(profile.supported_devices),
        "default_packages": list(target_info.default_packages),
        "device_packages": list(profile.device_packages),
        "images": images,
        "filesystems": filesystems,
        "supports_rootfs_size": partitioned,
        "image_size_limit": limits.get("image"),
    }


@dataclass(frozen=True, slots=True)
class BranchSummary:
    """One branch on the about page."""

    name: str
    snapshot: bool
    versions: list[str]
    targets: list[str]


def branch_summaries(catalog: CatalogReader, distro: str) -> list[BranchSummary]:
    return [
        BranchSummary(branch.name, branch.snapshot, list(branch.versions), sorted(branch.targets))
        for branch in catalog.branches(distro).values()
        if branch.enabled
    ]
