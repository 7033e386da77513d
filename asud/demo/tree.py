"""The layout of the download tree: which file goes into which directory, and the order they are written
in (packages, then their indexes and signatures, then ``sha256sums`` and its signature).

```
/.versions.json  /keys/<fingerprint>.pub
/<releases/V|snapshots>/.targets.json  .overview.json
    targets/<t>/<s>/profiles.json  <IB archive>  packages/…  kmods/<kver>/…  sha256sums  sha256sums.sig
    packages/<arch>/feeds.conf  <feed>/…  sha256sums  sha256sums.sig
```
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from asud.demo.checksums import write_sha256sums
from asud.demo.devices import TargetDef
from asud.demo.imagebuilder_tarball import build_imagebuilder
from asud.demo.indexes import IndexEntry, apk_feed_files, opkg_feed_files
from asud.demo.metadata import overview_json, profiles_json, targets_json
from asud.demo.package_set import FEEDS, release_packages
from asud.demo.packages import BuiltPackage, build_package
from asud.demo.releases import Release
from asud.demo.signing import sign_file
from asud.upstream.usign import SecretKey

__all__ = ["Progress", "feeds_conf", "write_feed", "write_release", "write_signed_sha256sums"]

Progress = Callable[[str], None]


def write_feed(
    directory: Path, entries: Sequence[IndexEntry], release: Release, architecture: str, key: SecretKey
) -> None:
    """Write the index files of one feed directory (the package files are already there)."""
    directory.mkdir(parents=True, exist_ok=True)
    if release.package_manager == "apk":
        files = apk_feed_files(entries, architecture, key)
    else:
        files = opkg_feed_files(entries, architecture, release.index_json_version)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    if release.package_manager == "opkg":
        sign_file(directory / "Packages", key)


def write_signed_sha256sums(directory: Path, key: SecretKey) -> None:
    sign_file(write_sha256sums(directory), key)


def _write_packages(directory: Path, built: Sequence[BuiltPackage]) -> list[IndexEntry]:
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for package in built:
        (directory / package.spec.file_name).write_bytes(package.data)
        entries.append(
            IndexEntry(
                package.spec,
                package.spec.file_name,
                len(package.data),
                package.sha256,
                package.installed_size,
            )
        )
    return entries


def feeds_conf(release: Release) -> str:
    """``packages/<arch>/feeds.conf``: ``src-git <feed> <url>^<commit>`` per feed."""
    lines = []
    for feed in FEEDS:
        commit = hashlib.sha1(f"{release.revision}:{feed}".encode()).hexdigest()
        lines.append(f"src-git {feed} https://git.openwrt.org/feed/{feed}.git^{commit}\n")
    return "".join(lines)


def write_release(
    root: Path,
    release: Release,
    targets: Sequence[TargetDef],
    key: SecretKey,
    *,
    base_url: str,
    seed: int,
    with_imagebuilders: bool,
    progress: Progress,
) -> None:
    """Write everything below ``root/<release.path>`` for the demo scale."""
    release_dir = root / release.path
    release_dir.mkdir(parents=True, exist_ok=True)
    (release_dir / ".targets.json").write_bytes(targets_json(targets))
    (release_dir / ".overview.json").write_bytes(overview_json(release, targets))
    arch_done: set[str] = set()
    for target in targets:
        progress(f"{release.version} {target.target}")
        info = {
            "version": release.version,
            "revision": release.revision,
            "target": target.target,
            "arch": target.arch_packages,
            "kernel_version": release.kernel_version,
        }
        built: dict[str, list[BuiltPackage]] = {}
        for spec in release_packages(release, target):
            if spec.feed in FEEDS and target.arch_packages in arch_done:
                continue
            built.setdefault(spec.feed, []).append(build_package(spec, seed, info))

        target_dir = release_dir / "targets" / target.target
        core_entries = _write_packages(target_dir / "packages", built.get("core", []))
        write_feed(target_dir / "packages", core_entries, release, target.arch_packages, key)
        if release.kmods_split:
            kmods_dir = target_dir / "kmods" / release.linux_kernel(target.target).kmods_dir
            write_feed(
                kmods_dir, _write_packages(kmods_dir, built["kmods"]), release, target.arch_packages, key
            )
        (target_dir / "profiles.json").write_bytes(profiles_json(release, target))
        if with_imagebuilders:
            archive = build_imagebuilder(release, target, built["imagebuilder"], key, base_url, seed)
            (target_dir / release.imagebuilder_file(target.target)).write_bytes(archive)
        write_signed_sha256sums(target_dir, key)

        if target.arch_packages not in arch_done:
            arch_done.add(target.arch_packages)
            arch_dir = release_dir / "packages" / target.arch_packages
            for feed in FEEDS:
                feed_dir = arch_dir / feed
                write_feed(
                    feed_dir,
                    _write_packages(feed_dir, built.get(feed, [])),
                    release,
                    target.arch_packages,
                    key,
                )
            (arch_dir / "feeds.conf").write_text(feeds_conf(release))
            write_signed_sha256sums(arch_dir, key)
