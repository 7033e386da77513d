"""ImageBuilder archives: the miniature ImageBuilder program plus everything the generator knows about
the release and target (``.targetinfo.json``, repositories file, keys, local packages, kernel blob).

The program is copied verbatim from ``asud/demo/imagebuilder/``; it never imports asud, so it
only meets the generator through the files written here (docs/demo-upstream.md, "Contract").
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from asud.demo.archives import TarEntry, tar_bytes, with_parent_dirs, xz_bytes, zstd_bytes
from asud.demo.devices import TargetDef
from asud.demo.indexes import IndexEntry, adb_container, opkg_feed_files
from asud.demo.package_set import FEEDS
from asud.demo.packages import BuiltPackage
from asud.demo.releases import Release
from asud.upstream.usign import SecretKey

__all__ = [
    "KERNEL_BLOB_SIZE",
    "PROGRAM_DIR",
    "build_imagebuilder",
    "kernel_image_path",
    "repositories_text",
    "targetinfo",
]

#: Where the miniature ImageBuilder program lives in this source tree.
PROGRAM_DIR = Path(__file__).resolve().parent / "imagebuilder"
#: Bytes of the incompressible kernel blob every image starts with.
KERNEL_BLOB_SIZE = 256 * 1024


def kernel_image_path(release: Release, target: TargetDef) -> str:
    """The kernel blob inside the IB, where the real IB keeps ``$(KERNEL_BUILD_DIR)``."""
    return f"build_dir/target-{target.arch_packages}_musl/linux-{target.board}_{target.subtarget}/kernel"


def release_url(base_url: str, release: Release) -> str:
    return f"{base_url.rstrip('/')}/{release.path}"


def repositories_text(release: Release, target: TargetDef, base_url: str) -> str:
    """``repositories.conf`` (opkg) or ``repositories`` (apk) pointing at the generated tree."""
    url = release_url(base_url, release)
    feeds: list[tuple[str, str]] = [("core", f"{url}/targets/{target.target}/packages")]
    feeds.append(("base", f"{url}/packages/{target.arch_packages}/base"))
    if release.kmods_split:
        kmods = release.linux_kernel(target.target).kmods_dir
        feeds.append(("kmods", f"{url}/targets/{target.target}/kmods/{kmods}"))
    feeds += [(feed, f"{url}/packages/{target.arch_packages}/{feed}") for feed in FEEDS if feed != "base"]
    if release.package_manager == "apk":
        return "".join(f"{feed_url}/packages.adb\n" for _, feed_url in feeds)
    lines = ["## Remote package repositories"]
    lines += [f"src/gz openwrt_{name} {feed_url}" for name, feed_url in feeds]
    lines += [
        "",
        "## This is the local package repository, do not remove!",
        "src imagebuilder file:packages",
        "",
        "option check_signature",
        "",
    ]
    return "\n".join(lines)


def targetinfo(release: Release, target: TargetDef) -> dict[str, Any]:
    """The ``.targetinfo.json`` document the miniature ImageBuilder reads."""
    kernel = release.linux_kernel(target.target)
    profiles = {
        device.id: {
            "title": device.title,
            "titles": list(device.titles),
            "device_packages": list(device.device_packages),
            "supported_devices": list(device.supported_devices),
            "images": [image.to_json() for image in device.images],
            "file_size_limits": {"image": device.image_limit} if device.image_limit is not None else None,
        }
        for device in target.devices
    }
    return {
        "dist": release.dist,
        "version_number": release.version,
        "revision": release.revision,
        "source_date_epoch": release.source_date_epoch,
        "target": target.target,
        "architecture": target.architecture,
        "arch_packages": target.arch_packages,
        "package_manager": release.package_manager,
        "img_prefix_version": release.img_prefix_version,
        "default_packages": target.default_packages(release),
        "linux_kernel": (
            {"version": kernel.version, "release": kernel.release, "vermagic": kernel.vermagic}
            if release.kmods_split
            else None
        ),
        "filesystems": list(target.filesystems),
        "rootfs_filesystem_option": release.rootfs_filesystem_option,
        "profiles_json_size": release.profiles_sizes,
        "kernel_image": kernel_image_path(release, target),
        "profiles": profiles,
    }


@cache
def _program_files() -> tuple[TarEntry, ...]:
    """The program's files, relative to ``PROGRAM_DIR``; caches and bytecode are left out."""
    entries = []
    for path in sorted(PROGRAM_DIR.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        entries.append(TarEntry(path.relative_to(PROGRAM_DIR).as_posix(), path.read_bytes(), mode))
    return tuple(entries)


def kernel_blob(release: Release, target: TargetDef, seed: int) -> bytes:
    return random.Random(f"{seed}:kernel:{release.version}:{target.target}").randbytes(KERNEL_BLOB_SIZE)


def build_imagebuilder(
    release: Release,
    target: TargetDef,
    local_packages: Sequence[BuiltPackage],
    key: SecretKey,
    base_url: str,
    seed: int,
) -> bytes:
    """The compressed IB archive (``.tar.xz`` or ``.tar.zst`` by era)."""
    files: list[TarEntry] = list(_program_files())
    files.append(
        TarEntry(".targetinfo.json", (json.dumps(targetinfo(release, target), indent=2) + "\n").encode())
    )
    repositories = "repositories" if release.package_manager == "apk" else "repositories.conf"
    files.append(TarEntry(repositories, repositories_text(release, target, base_url).encode()))
    files.append(TarEntry(f"keys/{key.fingerprint}", key.public_key.to_text().encode()))
    entries = [
        IndexEntry(built.spec, built.spec.file_name, len(built.data), built.sha256, built.installed_size)
        for built in local_packages
    ]
    for built in local_packages:
        files.append(TarEntry(f"packages/{built.spec.file_name}", built.data))
    if release.package_manager == "apk":
        files.append(TarEntry("packages/packages.adb", adb_container(entries, target.arch_packages, key)))
    else:
        index = opkg_feed_files(entries, target.arch_packages, release.index_json_version, local=True)
        files.append(TarEntry("packages/Packages", index["Packages"]))
    files.append(TarEntry(kernel_image_path(release, target), kernel_blob(release, target, seed)))

    top = release.imagebuilder_name(target.target)
    members = [TarEntry(f"{top}/{entry.path}", entry.data, entry.mode) for entry in files]
    tar = tar_bytes(with_parent_dirs(members), release.source_date_epoch)
    return xz_bytes(tar) if release.ib_compression == "xz" else zstd_bytes(tar)
