"""A tiny, self-contained ImageBuilder tree for testing the miniature ImageBuilder on its own.

It writes what the demo generator writes (see docs/demo-upstream.md, "Contract between the generator
and the miniature ImageBuilder"): packages in the contract's archive formats, signed feeds, keys/,
``.targetinfo.json``, the repositories file, the local ``packages/`` and a kernel blob — without
depending on the generator.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing

PROGRAM_DIR = Path(__file__).resolve().parents[2] / "asud" / "demo" / "imagebuilder"
EPOCH = 1700000000


@dataclass
class Pkg:
    """One package to publish: metadata plus the files it installs (path → content)."""

    name: str
    version: str
    depends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    abi: str = ""
    files: dict[str, bytes | str] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)


class Signer:
    """A usign key: ``keynum`` (fingerprint bytes) and an Ed25519 key from a fixed seed."""

    def __init__(self, seed: bytes = b"\x01" * 32) -> None:
        self.key = nacl.signing.SigningKey(seed)
        self.keynum = hashlib.sha256(seed).digest()[:8]

    @property
    def fingerprint(self) -> str:
        return self.keynum.hex()

    def public_file(self) -> str:
        blob = b"Ed" + self.keynum + bytes(self.key.verify_key)
        return f"untrusted comment: public key {self.fingerprint}\n{base64.b64encode(blob).decode()}\n"

    def signature_file(self, message: bytes) -> str:
        blob = b"Ed" + self.keynum + self.key.sign(message).signature
        return f"untrusted comment: signed by key {self.fingerprint}\n{base64.b64encode(blob).decode()}\n"


def _tar_gz(entries: list[tuple[str, bytes | None, int]]) -> bytes:
    """A gzip tar of (name, content or None for a directory, mode) entries, owned by root."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as archive,
    ):
        for name, content, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif name.endswith("@link"):
                info.name = name[:-5]
                info.type = tarfile.SYMTYPE
                info.linkname = content.decode()
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _data_entries(pkg: Pkg, prefix: str) -> list[tuple[str, bytes | None, int]]:
    entries: list[tuple[str, bytes | None, int]] = []
    directories: set[str] = set()
    for path, content in sorted(pkg.files.items()):
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in directories:
                directories.add(directory)
                entries.append((prefix + directory + "/", None, 0o755))
        data = content.encode() if isinstance(content, str) else content
        entries.append((prefix + path.strip("/"), data, pkg.modes.get(path, 0o644)))
    return entries


def control_text(pkg: Pkg, arch: str) -> str:
    lines = [f"Package: {pkg.name}{pkg.abi}", f"Version: {pkg.version}"]
    if pkg.depends:
        lines.append("Depends: " + ", ".join(pkg.depends))
    if pkg.conflicts:
        lines.append("Conflicts: " + ", ".join(pkg.conflicts))
    provides = list(pkg.provides) + ([pkg.name] if pkg.abi else [])
    if provides:
        lines.append("Provides: " + ", ".join(provides))
    if pkg.abi:
        lines.append(f"ABIVersion: {pkg.abi}")
    lines += [
        "License: GPL-2.0",
        "Section: base",
        f"Architecture: {arch}",
        "Installed-Size: 1024",
        f"Description:  The {pkg.name} package",
    ]
    return "\n".join(lines) + "\n"


def make_ipk(pkg: Pkg, arch: str) -> bytes:
    """An ``.ipk`` as ipkg-build writes it: gzip tar of debian-binary, control.tar.gz, data.tar.gz."""
    control = _tar_gz([("./control", control_text(pkg, arch).encode(), 0o644)])
    data = _tar_gz([("./", None, 0o755), *_data_entries(pkg, "./")])
    return _tar_gz(
        [
            ("./debian-binary", b"2.0\n", 0o644),
            ("./control.tar.gz", control, 0o644),
            ("./data.tar.gz", data, 0o644),
        ]
    )


def make_apk(pkg: Pkg, arch: str) -> bytes:
    """A demo ``.apk``: gzip tar of ``.PKGINFO`` followed by the files."""
    lines = [f"pkgname = {pkg.name}{pkg.abi}", f"pkgver = {pkg.version}", f"arch = {arch}", "size = 1024"]
    lines += [f"depend = {d}" for d in pkg.depends] + [f"depend = !{c}" for c in pkg.conflicts]
    lines += [f"provides = {p}" for p in pkg.provides]
    if pkg.abi:
        lines.append(f"tags = openwrt:abiversion={pkg.abi}")
    return _tar_gz([(".PKGINFO", ("\n".join(lines) + "\n").encode(), 0o644), *_data_entries(pkg, "")])


def write_opkg_feed(directory: Path, pkgs: list[Pkg], arch: str, signer: Signer | None) -> None:
    """``<name><abi>_<version>_<arch>.ipk`` files plus Packages, Packages.gz and Packages.sig."""
    directory.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for pkg in pkgs:
        data = make_ipk(pkg, arch)
        filename = f"{pkg.name}{pkg.abi}_{pkg.version}_{arch}.ipk"
        (directory / filename).write_bytes(data)
        control = control_text(pkg, arch)
        head, _, description = control.rpartition("Description:")
        stanzas.append(
            f"{head}Filename: {filename}\nSize: {len(data)}\nSHA256sum: "
            f"{hashlib.sha256(data).hexdigest()}\nDescription:{description}"
        )
    text = "\n".join(stanzas).encode()
    (directory / "Packages").write_bytes(text)
    (directory / "Packages.gz").write_bytes(gzip.compress(text, mtime=0))
    if signer:
        (directory / "Packages.sig").write_text(signer.signature_file(text))


def write_apk_feed(directory: Path, pkgs: list[Pkg], arch: str, signer: Signer | None) -> None:
    """``<name><abi>-<version>.apk`` files plus the demo ``packages.adb`` (signed text container)."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for pkg in pkgs:
        data = make_apk(pkg, arch)
        filename = f"{pkg.name}{pkg.abi}-{pkg.version}.apk"
        (directory / filename).write_bytes(data)
        entries.append(
            {
                "name": pkg.name + pkg.abi,
                "version": pkg.version,
                "depends": pkg.depends,
                "provides": pkg.provides + ([pkg.name] if pkg.abi else []),
                "conflicts": pkg.conflicts,
                "abi_version": pkg.abi or None,
                "file": filename,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "installed_size": 1024,
                "description": f"The {pkg.name} package",
            }
        )
    body = json.dumps({"architecture": arch, "packages": entries}, separators=(",", ":")).encode()
    assert signer is not None
    signature = signer.signature_file(body).encode()
    (directory / "packages.adb").write_bytes(b"SYSUP-DEMO-ADB 1\n" + signature + body)


INIT_SCRIPT = "#!/bin/sh /etc/rc.common\n\nSTART={start}\nSTOP={stop}\n\nstart() {{\n\ttrue\n}}\n"


def base_packages(apk: bool) -> list[Pkg]:
    """A small package universe exercising ABI names, Provides, alternatives, versions and Conflicts."""
    rel = "-r1" if apk else "-1"
    ver = lambda v: f"{v}{rel}"  # noqa: E731 - a one-line helper
    newer = "libubox>=2099" if apk else "libubox (>= 2099)"
    return [
        Pkg(
            "base-files",
            ver("1600"),
            ["libc", "netifd"],
            files={
                "/etc/banner": "OpenWrt banner\n",
                "/etc/init.d/boot": INIT_SCRIPT.format(start=10, stop=90),
            },
        ),
        Pkg(
            "busybox",
            ver("1.36.1"),
            ["libc"],
            files={"/bin/busybox": b"\x7fELF busybox", "/bin/sh@link": "busybox"},
        ),
        Pkg(
            "libubox", ver("2024.03.29"), ["libc"], abi="20240329", files={"/lib/libubox.so.20240329": b"lib"}
        ),
        Pkg("netifd", ver("2024.01.04"), ["libc", "libubox"], files={"/sbin/netifd": b"netifd"}),
        Pkg(
            "dropbear",
            ver("2022.82"),
            ["libc"],
            files={
                "/etc/init.d/dropbear": INIT_SCRIPT.format(start=19, stop=50),
                "/usr/sbin/dropbear": b"dropbear",
            },
            modes={"/etc/init.d/dropbear": 0o755, "/usr/sbin/dropbear": 0o755},
        ),
        Pkg("dnsmasq", ver("2.90"), ["libc"], files={"/usr/sbin/dnsmasq": b"dnsmasq"}),
        Pkg(
            "dnsmasq-full",
            ver("2.90"),
            ["libc"],
            provides=["dnsmasq-any"],
            conflicts=["dnsmasq"],
            files={"/usr/sbin/dnsmasq": b"dnsmasq-full"},
        ),
        Pkg("uhttpd", ver("2023.06.25"), ["libc"], files={"/usr/sbin/uhttpd": b"uhttpd"}),
        Pkg(
            "luci",
            ver("25.001"),
            ["libc", "uhttpd" if apk else "nonexistent-server | uhttpd"],
            files={"/www/luci-static/index.html": "<html>luci</html>\n"},
        ),
        Pkg("needs-newer", ver("1.0"), [newer], files={"/usr/bin/needs-newer": b"x"}),
        Pkg(
            "bigfile",
            ver("1.0"),
            ["libc"],
            files={"/usr/share/bigfile.bin": _incompressible(3 * 1024 * 1024)},
        ),
        Pkg("kmod-e1000", ver("6.6.86"), ["kernel"], files={"/lib/modules/6.6.86/e1000.ko": b"ko"}),
    ]


def _incompressible(size: int) -> bytes:
    """Deterministic bytes that no compressor shrinks, to fill partitions and flash."""
    return random.Random(size).randbytes(size)


@dataclass
class FixtureIB:
    top: Path
    signer: Signer
    info: dict


def build_ib(
    root: Path,
    *,
    apk: bool,
    target: str,
    profiles: dict,
    version: str = "24.10.4",
    rootfs_filesystem_option: bool = False,
    filesystems: tuple[str, ...] = ("squashfs", "ext4"),
    linux_kernel: bool = True,
    signer: Signer | None = None,
) -> FixtureIB:
    """Write a download tree (feeds under ``root/upstream``) and an ImageBuilder at ``root/ib``."""
    signer = signer or Signer()
    arch = {"x86/64": "x86_64", "ath79/generic": "mips_24kc"}.get(target, "aarch64_cortex-a53")
    upstream = root / "upstream"
    top = root / "ib"
    shutil.copytree(PROGRAM_DIR, top, ignore=shutil.ignore_patterns("__pycache__"))
    pkgs = base_packages(apk)
    kmods = [p for p in pkgs if p.name.startswith("kmod-")]
    others = [p for p in pkgs if not p.name.startswith("kmod-")]
    write_feed = write_apk_feed if apk else write_opkg_feed
    write_feed(upstream / "base", others, arch, signer)
    write_feed(upstream / "kmods", kmods, arch, signer)
    local = [
        Pkg("libc", "1.2.5-r4" if apk else "1.2.5-4", files={"/lib/libc.so": b"libc"}),
        Pkg("kernel", "6.6.86~abc-r1" if apk else "6.6.86-1-abc", files={}),
    ]
    (top / "packages").mkdir()
    for pkg in local:
        if apk:
            (top / "packages" / f"{pkg.name}-{pkg.version}.apk").write_bytes(make_apk(pkg, arch))
        else:
            (top / "packages" / f"{pkg.name}_{pkg.version}_{arch}.ipk").write_bytes(make_ipk(pkg, arch))
    (top / "keys").mkdir()
    (top / "keys" / signer.fingerprint).write_text(signer.public_file())
    if apk:
        (top / "repositories").write_text(
            f"file://{upstream}/base/packages.adb\n{upstream}/kmods/packages.adb\n"
        )
    else:
        (top / "repositories.conf").write_text(
            f"## Remote package repositories\nsrc/gz openwrt_base file://{upstream}/base\n"
            f"src/gz openwrt_kmods file:{upstream}/kmods\n\n"
            "## This is the local package repository, do not remove!\nsrc imagebuilder file:packages\n\n"
            "option check_signature\n"
        )
    board, _, subtarget = target.partition("/")
    kernel_dir = top / "build_dir" / f"target-{arch}_musl" / f"linux-{board}_{subtarget}"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel").write_bytes(b"KERNEL" * 1000)
    info = {
        "dist": "openwrt",
        "version_number": version,
        "revision": "r28959-29397011cc",
        "source_date_epoch": EPOCH,
        "target": target,
        "architecture": {"x86_64": "x86_64", "mips_24kc": "mips"}.get(arch, "aarch64"),
        "arch_packages": arch,
        "package_manager": "apk" if apk else "opkg",
        "img_prefix_version": version != "SNAPSHOT",
        "default_packages": ["base-files", "busybox", "dnsmasq", "dropbear", "libc", "netifd"],
        "linux_kernel": {"version": "6.6.86", "release": "1", "vermagic": "abc"} if linux_kernel else None,
        "filesystems": list(filesystems),
        "rootfs_filesystem_option": rootfs_filesystem_option,
        "profiles_json_size": apk,
        "profiles": profiles,
    }
    (top / ".targetinfo.json").write_text(json.dumps(info, indent=2))
    return FixtureIB(top, signer, info)


X86_PROFILES = {
    "generic": {
        "title": "Generic x86/64",
        "titles": [{"model": "x86/64", "vendor": "Generic"}],
        "device_packages": ["kmod-e1000"],
        "supported_devices": [],
        "images": [
            {"type": "combined", "filesystem": "squashfs", "suffix": "squashfs-combined.img.gz"},
            {"type": "combined-efi", "filesystem": "squashfs", "suffix": "squashfs-combined-efi.img.gz"},
            {"type": "combined", "filesystem": "ext4", "suffix": "ext4-combined.img.gz"},
            {"type": "combined-efi", "filesystem": "ext4", "suffix": "ext4-combined-efi.img.gz"},
        ],
        "file_size_limits": None,
    },
}

ATH79_PROFILES = {
    "tplink_archer-c7-v5": {
        "title": "TP-Link Archer C7 v5",
        "titles": [{"model": "Archer C7", "variant": "v5", "vendor": "TP-Link"}],
        "device_packages": ["kmod-e1000", "-dnsmasq", "dnsmasq-full"],
        "supported_devices": ["tplink,archer-c7-v5", "archer-c7-v5"],
        "images": [
            {"type": "sysupgrade", "filesystem": "squashfs", "suffix": "squashfs-sysupgrade.bin"},
            {"type": "factory", "filesystem": "squashfs", "suffix": "squashfs-factory.bin"},
        ],
        "file_size_limits": {"image": 1_500_000},
    },
    "tiny_router": {
        "title": "Tiny Router",
        "titles": [{"model": "Router", "vendor": "Tiny"}],
        "device_packages": [],
        "supported_devices": ["tiny,router"],
        "images": [{"type": "sysupgrade", "filesystem": "squashfs", "suffix": "squashfs-sysupgrade.bin"}],
        "file_size_limits": {"image": 900_000},
    },
}
