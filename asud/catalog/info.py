"""What the catalog answers: plain, immutable descriptions of branches, versions and targets.

``BranchInfo.to_json`` is one entry of ``branches`` in ``/json/v1/overview.json``;
``TargetInfo.profile_json`` is ``/json/v1/{path}/targets/{target}/{profile}.json`` (minus ``build_at``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asud.config import PackageChange
from asud.upstream.records import LinuxKernel, PackageManager, ProfileEntry, ProfilesDocument

__all__ = ["BranchInfo", "TargetInfo", "VersionInfo"]


@dataclass(frozen=True)
class BranchInfo:
    """One entry of ``branches`` in ``/json/v1/overview.json`` (clients-contract §6.6)."""

    name: str
    path: str
    snapshot: bool
    enabled: bool
    branch_off_rev: int | None
    #: Releases newest first, then the branch's ``XX.YY-SNAPSHOT`` (or ``SNAPSHOT``).
    versions: list[str]
    targets: dict[str, str]
    package_changes: list[PackageChange]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "enabled": self.enabled,
            "snapshot": self.snapshot,
            "path": self.path,
            "path_packages": "DEPRECATED",
            "versions": self.versions,
            "targets": self.targets,
            "package_changes": [change.to_json() for change in self.package_changes],
        }
        if self.branch_off_rev is not None:
            data["branch_off_rev"] = self.branch_off_rev
        return data


@dataclass(frozen=True)
class VersionInfo:
    distro: str
    version: str
    branch: str
    #: Below the upstream URL: ``releases/24.10.4`` or ``snapshots``.
    path: str
    snapshot: bool
    package_manager: PackageManager


@dataclass(frozen=True)
class TargetInfo:
    """A target of a version: the top level of its ``profiles.json`` and every profile."""

    distro: str
    version: str
    target: str
    arch_packages: str
    version_code: str
    source_date_epoch: int
    default_packages: tuple[str, ...]
    linux_kernel: LinuxKernel | None
    package_manager: PackageManager
    #: Top-level keys of ``profiles.json`` as upstream wrote them, except ``profiles``.
    metadata: dict[str, Any]
    profiles: dict[str, ProfileEntry] = field(repr=False)

    def profile_json(self, profile: str) -> dict[str, Any]:
        """``/json/v1/{path}/targets/{target}/{profile}.json`` without ``build_at``: the top level,
        then the profile's own keys, then ``id``."""
        entry = self.profiles[profile]
        data = dict(self.metadata)
        data.update(
            {
                "titles": [dict(title) for title in entry.titles],
                "device_packages": list(entry.device_packages),
                "supported_devices": list(entry.supported_devices),
                "image_prefix": entry.image_prefix,
                "images": [image.to_json() for image in entry.images],
            }
        )
        if entry.file_size_limits is not None:
            data["file_size_limits"] = entry.file_size_limits
        data["id"] = profile
        return data

    def document(self) -> ProfilesDocument:
        """The target as a ``ProfilesDocument`` (as if ``profiles.json`` were parsed again)."""
        return ProfilesDocument(
            target=self.target,
            version_code=self.version_code,
            version_number=str(self.metadata.get("version_number", self.version)),
            arch_packages=self.arch_packages,
            source_date_epoch=self.source_date_epoch,
            default_packages=self.default_packages,
            profiles=dict(self.profiles),
            metadata_version=int(self.metadata.get("metadata_version", 1)),
            linux_kernel=self.linux_kernel,
            raw=dict(self.metadata),
        )
