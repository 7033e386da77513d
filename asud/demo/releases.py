"""The releases of the demo download server and the quirks of the era each one imitates.

Every era difference the server must cope with is a field here (package manager, IB compression,
index.json version, kmods split, package release suffix), so the rest of the generator never compares
version strings to decide a format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from asud.upstream.records import LinuxKernel, PackageManager

__all__ = ["OLDSTABLE_VERSION", "RELEASES", "STABLE_VERSION", "Release"]

Compression = Literal["xz", "zst"]


@dataclass(frozen=True, slots=True)
class Release:
    """One version of the download tree (``releases/<version>`` or ``snapshots``)."""

    version: str
    branch: str
    revision: str
    source_date_epoch: int
    package_manager: PackageManager
    #: 1: the sed one-liner of ≤23.05 (ABI names kept); 2: ``make-index-json.py`` (ABI names stripped).
    index_json_version: int
    #: kmods live in ``targets/<t>/<s>/kmods/<kver>/`` instead of the target ``packages/``.
    kmods_split: bool
    kernel_version: str
    ib_compression: Compression
    #: The IB understands ``make image ROOTFS_FILESYSTEM=`` (OpenWrt main since May 2026).
    rootfs_filesystem_option: bool
    #: ``profiles.json`` carries ``file_size_limits`` and image ``size`` (OpenWrt 25.12+).
    profiles_sizes: bool
    #: Distribution name: the first word of image and ImageBuilder file names (``VERSION_DIST``).
    dist: str = "openwrt"

    @property
    def is_snapshot(self) -> bool:
        return self.version == "SNAPSHOT"

    @property
    def path(self) -> str:
        """Directory of this version below the server root."""
        return "snapshots" if self.is_snapshot else f"releases/{self.version}"

    @property
    def img_prefix_version(self) -> bool:
        """Whether file names carry the version (``CONFIG_VERSION_FILENAMES``): releases yes, snapshots no."""
        return not self.is_snapshot

    def package_version(self, upstream: str, release: int | None) -> str:
        """``PKG_VERSION`` plus ``PKG_RELEASE`` as the era formats it: ``1.2-3`` (≤23.05) or ``1.2-r3``."""
        if release is None:
            return upstream
        if self.package_manager == "opkg" and self.branch == "23.05":
            return f"{upstream}-{release}"
        return f"{upstream}-r{release}"

    def linux_kernel(self, target: str) -> LinuxKernel:
        """Kernel version, release and vermagic; the vermagic differs per target, as upstream."""
        vermagic = hashlib.md5(f"{self.version}/{target}/{self.kernel_version}".encode()).hexdigest()
        return LinuxKernel(version=self.kernel_version, release="1", vermagic=vermagic)

    def kernel_package_version(self, target: str) -> str:
        """Version of the ``kernel`` package: ``5.15.167-1-<vermagic>`` or ``6.6.86~<vermagic>-r1``."""
        kernel = self.linux_kernel(target)
        if self.branch == "23.05":
            return f"{kernel.version}-{kernel.release}-{kernel.vermagic}"
        return f"{kernel.version}~{kernel.vermagic}-r{kernel.release}"

    @property
    def kmod_version(self) -> str:
        """Version of every ``kmod-*`` package: ``5.15.167-1`` or ``6.6.86-r1``."""
        return self.package_version(self.kernel_version, 1)

    def imagebuilder_name(self, target: str) -> str:
        """Top directory of the IB archive (and its file name without the extension)."""
        board = target.replace("/", "-")
        version = f"{self.version}-" if self.img_prefix_version else ""
        return f"{self.dist}-imagebuilder-{version}{board}.Linux-x86_64"

    def imagebuilder_file(self, target: str) -> str:
        return f"{self.imagebuilder_name(target)}.tar.{self.ib_compression}"

    def image_prefix(self, target: str) -> str:
        """``IMG_PREFIX``: ``openwrt-24.10.4-ath79-generic`` or ``openwrt-ath79-generic``."""
        board = target.replace("/", "-")
        return f"{self.dist}-{self.version}-{board}" if self.img_prefix_version else f"{self.dist}-{board}"


RELEASES: tuple[Release, ...] = (
    Release(
        "23.05.5", "23.05", "r24106-10cc5fcd00", 1727094886, "opkg", 1, False, "5.15.167", "xz", False, False
    ),
    Release(
        "24.10.4", "24.10", "r28959-29397011cc", 1761146420, "opkg", 2, True, "6.6.86", "zst", False, False
    ),
    Release(
        "24.10.5", "24.10", "r29087-d9c5716d1d", 1765816311, "opkg", 2, True, "6.6.86", "zst", False, False
    ),
    Release(
        "25.12.1", "25.12", "r32175-4b3c52d1e9", 1771254040, "apk", 2, True, "6.12.94", "zst", False, True
    ),
    Release(
        "SNAPSHOT", "SNAPSHOT", "r32870-8e1f6a0b47", 1777641600, "apk", 2, True, "6.12.94", "zst", True, True
    ),
)

#: ``/.versions.json`` values (SNAPSHOT is never listed, as upstream).
STABLE_VERSION = "25.12.1"
OLDSTABLE_VERSION = "24.10.5"
