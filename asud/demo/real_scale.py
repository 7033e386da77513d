"""Metadata at the size of downloads.openwrt.org, for benchmarks (``--scale real``).

About 100 subtargets with 2,000 device profiles and 10,000 packages per architecture per release, in the
same formats as the demo scale. Only metadata is written: the indexes name package files that do not
exist, and there are no ImageBuilders (``sha256sums`` lists only what is present).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from asud.demo.devices import TARGETS, DeviceDef, ImageDef, TargetDef
from asud.demo.indexes import IndexEntry
from asud.demo.metadata import overview_json, profiles_json, targets_json
from asud.demo.package_set import FEEDS, PackageSpec, release_packages
from asud.demo.releases import Release
from asud.demo.tree import Progress, feeds_conf, write_feed, write_signed_sha256sums
from asud.upstream.records import Dependency
from asud.upstream.usign import SecretKey

__all__ = ["real_scale_targets", "write_real_release"]

#: Architectures of the synthetic targets (the three demo ones first).
_ARCHES = (
    ("x86_64", "x86_64"),
    ("mips_24kc", "mips"),
    ("aarch64_cortex-a53", "aarch64"),
    ("arm_cortex-a7_neon-vfpv4", "arm"),
    ("arm_cortex-a9_vfpv3-d16", "arm"),
    ("mipsel_24kc", "mipsel"),
    ("aarch64_generic", "aarch64"),
    ("arm_cortex-a15_neon-vfpv4", "arm"),
    ("i386_pentium4", "i386"),
    ("powerpc_464fp", "powerpc"),
)
_VENDORS = (
    "ASUS",
    "AVM",
    "Buffalo",
    "Cudy",
    "D-Link",
    "GL.iNet",
    "Linksys",
    "NETGEAR",
    "TP-Link",
    "Xiaomi",
    "ZyXEL",
    "Ubiquiti",
    "MikroTik",
    "Netgear",
    "Huawei",
    "Zbtlink",
    "Wavlink",
    "Teltonika",
    "Comfast",
)
SUBTARGETS = 100
PROFILES_PER_SUBTARGET = 20
PACKAGES_PER_ARCH = 10_000
KMODS_PER_TARGET = 150
_FEED_SHARE = {"base": 700, "luci": 1_300}  # the packages feed takes the rest


@cache
def real_scale_targets() -> tuple[TargetDef, ...]:
    """The three demo targets plus synthetic ones, ``SUBTARGETS`` in all."""
    targets = list(TARGETS)
    image = ImageDef("sysupgrade", "squashfs", "squashfs-sysupgrade.bin")
    factory = ImageDef("factory", "squashfs", "squashfs-factory.bin")
    for index in range(SUBTARGETS - len(targets)):
        arch_packages, architecture = _ARCHES[index % len(_ARCHES)]
        board = f"board{index // 4:02d}"
        devices = []
        for number in range(PROFILES_PER_SUBTARGET):
            vendor = _VENDORS[(index + number) % len(_VENDORS)]
            slug = vendor.lower().replace(".", "").replace(" ", "").replace("-", "")
            model = f"R{index:02d}{number:02d}"
            devices.append(
                DeviceDef(
                    id=f"{slug}_{model.lower()}-v{1 + number % 3}",
                    titles=({"vendor": vendor, "model": model, "variant": f"v{1 + number % 3}"},),
                    device_packages=("kmod-usb2", "kmod-ath10k-ct") if number % 2 else ("kmod-mt7915e",),
                    supported_devices=(f"{slug},{model.lower()}-v{1 + number % 3}",),
                    images=(image, factory),
                    image_limit=(7744 + 8192 * (number % 3)) * 1024,
                )
            )
        targets.append(
            TargetDef(
                f"{board}/sub{index % 4}",
                arch_packages,
                architecture,
                ("squashfs",),
                ("kmod-gpio-button-hotplug",),
                tuple(devices),
            )
        )
    return tuple(targets)


def _fake_entry(spec: PackageSpec) -> IndexEntry:
    digest = hashlib.sha256(f"{spec.name}\0{spec.version}\0{spec.architecture}".encode()).hexdigest()
    size = 2_000 + int(digest[:5], 16) % 200_000
    return IndexEntry(spec, spec.file_name, size, digest, size * 3)


def _synthetic(template: PackageSpec, name: str, feed: str, depends: tuple[str, ...]) -> PackageSpec:
    return PackageSpec(
        name=name,
        base_name=name,
        version=template.version,
        abi_version=None,
        feed=feed,
        architecture=template.architecture,
        depends=tuple((Dependency(dep),) for dep in depends),
        provides=(),
        conflicts=(),
        section=feed,
        description=f"Synthetic package {name}",
        payload=0,
        package_manager=template.package_manager,
        source_date_epoch=template.source_date_epoch,
    )


def _demo_specs(release: Release, target: TargetDef) -> dict[str, list[PackageSpec]]:
    """The demo packages of the demo target with the same architecture (x86/64's for other arches)."""
    base_target = next((t for t in TARGETS if t.arch_packages == target.arch_packages), TARGETS[0])
    by_feed: dict[str, list[PackageSpec]] = {}
    for spec in release_packages(release, base_target):
        if spec.architecture not in ("all", target.arch_packages):
            spec = _retarget(spec, target.arch_packages)
        by_feed.setdefault(spec.feed, []).append(spec)
    return by_feed


def _target_specs(release: Release, target: TargetDef) -> dict[str, list[PackageSpec]]:
    """Core packages and kmods of one target, padded to ``KMODS_PER_TARGET`` kmods."""
    by_feed = _demo_specs(release, target)
    kmod_feed = "kmods" if release.kmods_split else "core"
    kmods = by_feed[kmod_feed]
    template = kmods[0]
    depends = tuple(group[0].name for group in template.depends)
    kmods += [
        _synthetic(template, f"kmod-extra-{number:03d}", kmod_feed, depends)
        for number in range(KMODS_PER_TARGET - len(kmods))
    ]
    return {feed: by_feed.get(feed, []) for feed in ("core", "kmods")}


def _feed_specs(release: Release, target: TargetDef) -> dict[str, list[PackageSpec]]:
    """The arch feeds, padded with synthetic packages to ``PACKAGES_PER_ARCH`` in all."""
    by_feed = _demo_specs(release, target)
    per_feed = dict(_FEED_SHARE, packages=PACKAGES_PER_ARCH - sum(_FEED_SHARE.values()))
    result = {}
    for feed in FEEDS:
        specs = by_feed.get(feed, [])
        template = specs[0]
        for number in range(per_feed[feed] - len(specs)):
            depends = ("libc", specs[number % 40].name) if number % 3 else ("libc",)
            specs.append(_synthetic(template, f"{feed}-extra-{number:05d}", feed, depends))
        result[feed] = specs
    return result


def _retarget(spec: PackageSpec, arch: str) -> PackageSpec:
    fields = {slot: getattr(spec, slot) for slot in PackageSpec.__slots__}
    fields["architecture"] = arch
    return PackageSpec(**fields)


def write_real_release(
    root: Path,
    release: Release,
    targets: Sequence[TargetDef],
    key: SecretKey,
    *,
    seed: int,
    progress: Progress,
) -> None:
    """Write the metadata of one release at real size (see the module docstring)."""
    del seed  # nothing random: no package payloads at this scale
    release_dir = root / release.path
    release_dir.mkdir(parents=True, exist_ok=True)
    (release_dir / ".targets.json").write_bytes(targets_json(targets))
    (release_dir / ".overview.json").write_bytes(overview_json(release, targets))
    arch_done: set[str] = set()
    for target in targets:
        progress(f"{release.version} {target.target}")
        by_feed = _target_specs(release, target)
        target_dir = release_dir / "targets" / target.target
        write_feed(
            target_dir / "packages",
            [_fake_entry(s) for s in by_feed.get("core", [])],
            release,
            target.arch_packages,
            key,
        )
        if release.kmods_split:
            kmods_dir = target_dir / "kmods" / release.linux_kernel(target.target).kmods_dir
            write_feed(
                kmods_dir, [_fake_entry(s) for s in by_feed["kmods"]], release, target.arch_packages, key
            )
        target_dir.mkdir(parents=True, exist_ok=True)
        (target_dir / "profiles.json").write_bytes(profiles_json(release, target))
        write_signed_sha256sums(target_dir, key)
        if target.arch_packages in arch_done:
            continue
        arch_done.add(target.arch_packages)
        arch_dir = release_dir / "packages" / target.arch_packages
        for feed, specs in _feed_specs(release, target).items():
            write_feed(arch_dir / feed, [_fake_entry(s) for s in specs], release, target.arch_packages, key)
        (arch_dir / "feeds.conf").write_text(feeds_conf(release))
        write_signed_sha256sums(arch_dir, key)
