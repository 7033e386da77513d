"""The miniature ImageBuilder, run for real with make against small fixture trees (fixture_ib.py)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import nacl.signing
import pytest

from tests.demo.fixture_ib import (
    ATH79_PROFILES,
    PROGRAM_DIR,
    X86_PROFILES,
    FixtureIB,
    Signer,
    build_ib,
)
from tests.support import firmware
from tests.support.requirements import require_executable


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    for name, package in (
        ("make", "make"),
        ("mksquashfs", "squashfs-tools"),
        ("unsquashfs", "squashfs-tools"),
        ("mke2fs", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
    ):
        require_executable(name, package)


@pytest.fixture(scope="module")
def x86(tmp_path_factory: pytest.TempPathFactory) -> FixtureIB:
    return build_ib(tmp_path_factory.mktemp("x86"), apk=False, target="x86/64", profiles=X86_PROFILES)


@pytest.fixture(scope="module")
def ath79(tmp_path_factory: pytest.TempPathFactory) -> FixtureIB:
    return build_ib(
        tmp_path_factory.mktemp("ath79"),
        apk=False,
        target="ath79/generic",
        profiles=ATH79_PROFILES,
        version="23.05.5",
        linux_kernel=False,
        filesystems=("squashfs",),
    )


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> FixtureIB:
    return build_ib(
        tmp_path_factory.mktemp("apk"),
        apk=True,
        target="x86/64",
        profiles=X86_PROFILES,
        version="SNAPSHOT",
        rootfs_filesystem_option=True,
    )


def make(ib: FixtureIB | Path, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    top = ib.top if isinstance(ib, FixtureIB) else ib
    args = ["make", target, *(f"{key}={value}" for key, value in variables.items())]
    return subprocess.run(args, cwd=top, capture_output=True, text=True, timeout=120, check=False)


def manifest(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    return dict(line.split(" - ", 1) for line in result.stdout.splitlines())


# --- make info / val / help / package_list -------------------------------------------------------------


def test_info_prints_the_real_format(ath79: FixtureIB) -> None:
    result = make(ath79, "info")
    assert result.returncode == 0
    assert result.stdout == (
        'Current Target: "ath79/generic"\n'
        'Current Architecture: "mips"\n'
        'Current Revision: "r28959-29397011cc"\n'
        "Default Packages: base-files busybox dnsmasq dropbear libc netifd\n"
        "Available Profiles:\n"
        "\n"
        "tplink_archer-c7-v5:\n"
        "    TP-Link Archer C7 v5\n"
        "    Packages: kmod-e1000 -dnsmasq dnsmasq-full\n"
        "    hasImageMetadata: 1\n"
        "    SupportedDevices: tplink,archer-c7-v5 archer-c7-v5\n"
        "tiny_router:\n"
        "    Tiny Router\n"
        "    Packages: \n"
        "    hasImageMetadata: 1\n"
        "    SupportedDevices: tiny,router\n"
    )
    assert result.stderr == ""


def test_info_omits_supported_devices_when_empty(x86: FixtureIB) -> None:
    out = make(x86, "info").stdout
    assert "generic:\n    Generic x86/64\n    Packages: kmod-e1000\n    hasImageMetadata: 0\n" in out
    assert "SupportedDevices" not in out


def test_val_prints_variables(x86: FixtureIB) -> None:
    assert make(x86, "val.ARCH_PACKAGES").stdout == "x86_64\n"
    assert make(x86, "val.TARGETID").stdout == "x86/64\n"
    assert make(x86, "val.REVISION").stdout == "r28959-29397011cc\n"
    assert (
        make(x86, "val.KERNEL_BUILD_DIR").stdout.strip().endswith("build_dir/target-x86_64_musl/linux-x86_64")
    )
    assert make(x86, "val.BIN_DIR", BIN_DIR="/somewhere").stdout == "/somewhere\n"
    undefined = make(x86, "val.NO_SUCH_VAR")
    assert undefined.returncode == 0
    assert undefined.stderr == "NO_SUCH_VAR undefined\n"


def test_help_and_package_list(x86: FixtureIB) -> None:
    assert "make image PROFILE=" in make(x86, "help").stdout
    listing = make(x86, "package_list").stdout.splitlines()
    assert "libubox20240329 - 2024.03.29-1 - " in "\n".join(listing)
    assert any(line.startswith("kernel - 6.6.86-1-abc - ") for line in listing)
    assert all(len(line.split(" - ")) == 3 for line in listing)


# --- make manifest ------------------------------------------------------------------------------------


def test_manifest_opkg_resolves_and_strips_abi(x86: FixtureIB) -> None:
    stripped = manifest(make(x86, "manifest", PROFILE="generic", PACKAGES="luci -dropbear", STRIP_ABI="1"))
    assert stripped["libubox"] == "2024.03.29-1"
    assert "dropbear" not in stripped  # user removal of a default package
    assert (
        stripped["uhttpd"] == "2023.06.25-1"
    )  # first satisfiable alternative of "nonexistent-server | uhttpd"
    assert stripped["kmod-e1000"] == "6.6.86-1"  # device package, from the second feed
    assert stripped["kernel"] == "6.6.86-1-abc" and stripped["libc"] == "1.2.5-4"  # local packages/
    raw = manifest(make(x86, "manifest", PROFILE="DEVICE_generic", PACKAGES="luci"))
    assert "libubox20240329" in raw and "libubox" not in raw
    assert list(raw) == sorted(raw)


def test_manifest_honours_device_package_removals(ath79: FixtureIB) -> None:
    packages = manifest(make(ath79, "manifest", PROFILE="tplink_archer-c7-v5", STRIP_ABI="1"))
    assert "dnsmasq-full" in packages and "dnsmasq" not in packages
    # A user package brings back what the device removed; a user removal drops a device package.
    packages = manifest(make(ath79, "manifest", PROFILE="tplink_archer-c7-v5", PACKAGES="-kmod-e1000"))
    assert "kmod-e1000" not in packages


def test_unknown_package_opkg(x86: FixtureIB, tmp_path: Path) -> None:
    result = make(x86, "manifest", PROFILE="generic", PACKAGES="nope")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Collected errors:\n * opkg_install_cmd: Cannot install package nope.\n" in result.stderr
    assert "make[2]: *** [Makefile:234: package_install] Error 255" in result.stderr
    assert "make: *** [Makefile:" in result.stderr and "manifest] Error 2" in result.stderr
    image = make(x86, "image", PROFILE="generic", PACKAGES="nope", BIN_DIR=str(tmp_path))
    assert image.returncode == 2
    assert "Unknown package 'nope'." in image.stdout
    assert "_call_image] Error 2" in image.stderr


def test_conflicts_and_unsatisfiable_versions_opkg(x86: FixtureIB) -> None:
    result = make(x86, "manifest", PROFILE="generic", PACKAGES="dnsmasq-full needs-newer")
    assert result.returncode == 2
    assert " * check_conflicts_for: The following packages conflict with dnsmasq-full:\n" in result.stderr
    assert " * check_conflicts_for: \tdnsmasq \n" in result.stderr
    assert (
        " * satisfy_dependencies_for: Cannot satisfy the following dependencies for needs-newer:\n"
        " * \tlibubox (>= 2099)\n * opkg_install_cmd: Cannot install package needs-newer.\n" in result.stderr
    )
    assert manifest(make(x86, "manifest", PROFILE="generic", PACKAGES="dnsmasq-full -dnsmasq"))


def test_unknown_profile(x86: FixtureIB, tmp_path: Path) -> None:
    for target in ("manifest", "image"):
        result = make(x86, target, PROFILE="nope", BIN_DIR=str(tmp_path))
        assert result.returncode == 2  # the recipe exits 1; make reports it and exits 2
        assert (
            result.stdout
            == 'Profile "nope" does not exist!\nUse "make info" to get a list of available profile names.\n'
        )
        assert "_check_profile] Error 1" in result.stderr


# --- make image (opkg, x86 disk images) ------------------------------------------------------------------


def test_image_x86_opkg(x86: FixtureIB, tmp_path: Path) -> None:
    files = tmp_path / "files"
    (files / "etc/uci-defaults").mkdir(parents=True)
    (files / "etc/uci-defaults/99-asu-defaults").write_text("uci set system.@system[0].hostname=demo\n")
    (files / "etc/banner").write_text("custom banner\n")
    bin_dir = tmp_path / "bin"
    result = make(
        x86,
        "image",
        PROFILE="generic",
        PACKAGES="luci",
        FILES=str(files),
        BIN_DIR=str(bin_dir),
        EXTRA_IMAGE_NAME="Build_ID 42",
        ROOTFS_PARTSIZE="8",
        DISABLED_SERVICES="dropbear",
        ROOTFS_FILESYSTEM="ext4",
        STRIP_ABI="1",
    )
    assert result.returncode == 0, result.stderr
    prefix = "openwrt-24.10.4-build-id-42-x86-64-generic"
    names = {
        f"{prefix}-{fs}-{kind}.img.gz" for fs in ("squashfs", "ext4") for kind in ("combined", "combined-efi")
    }
    # ROOTFS_FILESYSTEM is ignored: this IB predates the option, so every filesystem is built.
    assert {p.name for p in bin_dir.iterdir()} == names | {
        f"{prefix}.manifest",
        "profiles.json",
        "sha256sums",
    }

    profiles = json.loads((bin_dir / "profiles.json").read_text())
    assert (bin_dir / "profiles.json").read_text() == json.dumps(
        profiles, sort_keys=True, separators=(",", ":")
    )
    assert profiles["linux_kernel"] == {"version": "6.6.86", "release": "1", "vermagic": "abc"}
    assert profiles["version_code"] == "r28959-29397011cc" and profiles["target"] == "x86/64"
    entry = profiles["profiles"]["generic"]
    assert entry["image_prefix"] == prefix and entry["supported_devices"] == []
    for image in entry["images"]:
        assert set(image) == {"name", "type", "filesystem", "sha256", "sha256_unsigned"}
        assert image["sha256"] == hashlib.sha256((bin_dir / image["name"]).read_bytes()).hexdigest()
    sums = (bin_dir / "sha256sums").read_text().splitlines()
    assert [s[66:] for s in sums] == sorted(s[66:] for s in sums) and len(sums) == 6
    assert all(line[64:66] == " *" for line in sums)
    manifest_lines = (bin_dir / f"{prefix}.manifest").read_text().splitlines()
    assert "libubox - 2024.03.29-1" in manifest_lines and "luci - 25.001-1" in manifest_lines

    for name in (f"{prefix}-squashfs-combined.img.gz", f"{prefix}-ext4-combined-efi.img.gz"):
        image = bin_dir / name
        assert gzip.decompress(image.read_bytes())[510:512] == b"\x55\xaa"
        boot, root = firmware.partitions(image)[:2]
        assert boot[3] is True and root[2] == 8 * 1024 * 1024 // 512
        assert firmware.read_kernel(image) == b"KERNEL" * 1000
        rootfs = firmware.extract_rootfs(image, tmp_path / f"root-{name}")
        assert (rootfs / "etc/banner").read_text() == "custom banner\n"  # FILES wins over base-files
        assert (rootfs / "etc/uci-defaults/99-asu-defaults").exists()
        assert (rootfs / "www/luci-static/index.html").exists()
        assert (rootfs / "bin/sh").is_symlink()
        assert "DISTRIB_RELEASE='24.10.4'" in (rootfs / "etc/openwrt_release").read_text()
        assert (rootfs / "etc/rc.d/S10boot").is_symlink() and (rootfs / "etc/rc.d/K90boot").is_symlink()
        assert not list((rootfs / "etc/rc.d").glob("*dropbear"))
        status = (rootfs / "usr/lib/opkg/status").read_text()
        assert (
            "Package: luci\nVersion: 25.001-1\nDepends: libc, nonexistent-server | uhttpd\n"
            "Status: install user installed\n" in status
        )
        assert (
            "Package: uhttpd\nVersion: 2023.06.25-1\nDepends: libc\nStatus: install ok installed\n" in status
        )
        assert "Package: libubox20240329\n" in status
        assert (rootfs / "usr/lib/opkg/info/luci.control").read_text().startswith("Package: luci\n")
        assert "/www/luci-static/index.html" in (rootfs / "usr/lib/opkg/info/luci.list").read_text()
    assert firmware.rootfs_filesystem(bin_dir / f"{prefix}-ext4-combined.img.gz") == "ext4"


def test_ext4_partition_too_small_fails_like_the_real_one(x86: FixtureIB, tmp_path: Path) -> None:
    result = make(
        x86, "image", PROFILE="generic", PACKAGES="bigfile", BIN_DIR=str(tmp_path), ROOTFS_PARTSIZE="2"
    )
    assert result.returncode == 2
    assert "error: ext4_allocate_best_fit_partial: failed to allocate " in result.stderr
    assert "blocks, out of space?" in result.stderr
    assert "root.ext4] Error 1" in result.stderr and "make[3]: *** [" in result.stderr


# --- make image (ath79: sysupgrade tar, factory, flash limit) ---------------------------------------------


def test_image_ath79_sysupgrade_and_factory(ath79: FixtureIB, tmp_path: Path) -> None:
    result = make(ath79, "image", PROFILE="tplink_archer-c7-v5", BIN_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    prefix = "openwrt-23.05.5-ath79-generic-tplink_archer-c7-v5"
    sysupgrade = tmp_path / f"{prefix}-squashfs-sysupgrade.bin"
    factory = tmp_path / f"{prefix}-squashfs-factory.bin"
    with tarfile.open(sysupgrade) as archive:
        names = archive.getnames()
        control = archive.extractfile("sysupgrade-tplink_archer-c7-v5/CONTROL")
        assert control is not None and control.read() == b"BOARD=tplink_archer-c7-v5\n"
    assert {"sysupgrade-tplink_archer-c7-v5/kernel", "sysupgrade-tplink_archer-c7-v5/root"} <= set(names)
    assert firmware.image_kind(factory) == "factory"
    for image in (sysupgrade, factory):
        assert firmware.read_kernel(image) == b"KERNEL" * 1000
        files = firmware.list_files(image)
        assert "/usr/sbin/dnsmasq" in files and "/lib/modules/6.6.86/e1000.ko" in files
        assert firmware.read_file(image, "/usr/sbin/dnsmasq") == b"dnsmasq-full"
    profiles = json.loads((tmp_path / "profiles.json").read_text())
    assert "linux_kernel" not in profiles  # 23.05-like IB
    entry = profiles["profiles"]["tplink_archer-c7-v5"]
    assert [i["type"] for i in entry["images"]] == ["sysupgrade", "factory"]
    assert "size" not in entry["images"][0] and "file_size_limits" not in entry
    assert entry["titles"] == [{"model": "Archer C7", "variant": "v5", "vendor": "TP-Link"}]


def test_flash_limit_drops_the_image_and_succeeds(ath79: FixtureIB, tmp_path: Path) -> None:
    result = make(ath79, "image", PROFILE="tiny_router", PACKAGES="bigfile", BIN_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "is too big" in line]
    assert len(warning) == 1
    assert warning[0].startswith("    WARNING: Image file ") and warning[0].endswith(" > 900000")
    assert "openwrt-23.05.5-ath79-generic-tiny_router-squashfs-sysupgrade.bin is too big: " in warning[0]
    assert not list(tmp_path.glob("*.bin"))
    assert json.loads((tmp_path / "profiles.json").read_text())["profiles"]["tiny_router"]["images"] == []


# --- apk era -------------------------------------------------------------------------------------------


def test_manifest_apk(snapshot: FixtureIB) -> None:
    result = make(
        snapshot, "manifest", PROFILE="generic", PACKAGES="luci libubox busybox=1.36.1-r1", STRIP_ABI="1"
    )
    packages = manifest(result)
    assert list(packages) == sorted(packages)
    assert packages["libubox"] == "2024.03.29-r1" and packages["luci"] == "25.001-r1"
    assert "libubox20240329" in manifest(make(snapshot, "manifest", PROFILE="generic"))


def test_apk_failures(snapshot: FixtureIB) -> None:
    result = make(snapshot, "manifest", PROFILE="generic", PACKAGES="nope dnsmasq-full")
    assert result.returncode == 2
    assert (
        "ERROR: unable to select packages:\n  nope (no such package):\n    required by: world[nope]\n"
        in result.stderr
    )
    assert "  dnsmasq-full-2.90-r1:\n    conflicts: dnsmasq-2.90-r1[dnsmasq=2.90-r1]\n" in result.stderr
    assert "make[2]: *** [Makefile:234: package_install] Error 1" in result.stderr
    assert make(snapshot, "manifest", PROFILE="generic", PACKAGES="busybox=9.9-r1").returncode == 2


def test_image_apk_with_rootfs_filesystem(snapshot: FixtureIB, tmp_path: Path) -> None:
    bad = make(snapshot, "image", PROFILE="generic", ROOTFS_FILESYSTEM="btrfs", BIN_DIR=str(tmp_path))
    assert bad.returncode == 2
    assert bad.stdout == 'Filesystem "btrfs" is not available!\nAvailable filesystems: squashfs ext4\n'
    result = make(
        snapshot,
        "image",
        PROFILE="generic",
        PACKAGES="uhttpd",
        ROOTFS_FILESYSTEM="ext4",
        ROOTFS_PARTSIZE="8",
        BIN_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    images = sorted(p.name for p in tmp_path.glob("*.img.gz"))
    assert images == [
        "openwrt-x86-64-generic-ext4-combined-efi.img.gz",
        "openwrt-x86-64-generic-ext4-combined.img.gz",
    ]
    entry = json.loads((tmp_path / "profiles.json").read_text())["profiles"]["generic"]
    assert all(i["size"] == (tmp_path / i["name"]).stat().st_size for i in entry["images"])
    root = firmware.extract_rootfs(tmp_path / images[0], tmp_path / "root")
    world = (root / "etc/apk/world").read_text().split()
    assert "uhttpd" in world and "libubox20240329" not in world
    installed = (root / "lib/apk/db/installed").read_text()
    assert "P:libubox20240329\nV:2024.03.29-r1\n" in installed
    manifest_text = (tmp_path / "openwrt-x86-64-generic.manifest").read_text()
    assert "uhttpd - 2023.06.25-r1\n" in manifest_text


# --- trust --------------------------------------------------------------------------------------------------


def _copy(ib: FixtureIB, tmp_path: Path) -> Path:
    top = tmp_path / "ib"
    shutil.copytree(ib.top, top, symlinks=True)
    return top


def test_untrusted_index_is_refused(x86: FixtureIB, snapshot: FixtureIB, tmp_path: Path) -> None:
    for ib in (x86, snapshot):
        top = _copy(ib, tmp_path / ib.info["package_manager"])
        for key in (top / "keys").iterdir():
            key.unlink()
        other = Signer(b"\x02" * 32)
        (top / "keys" / other.fingerprint).write_text(other.public_file())
        result = make(top, "manifest", PROFILE="generic")
        assert result.returncode == 2
        expected = "UNTRUSTED signature" if ib is snapshot else "Signature check failed for "
        assert expected in result.stderr
        assert f"no trusted key {ib.signer.fingerprint}" in result.stderr


def test_tampered_index_and_package_are_refused(x86: FixtureIB, tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    shutil.copytree(x86.top.parent / "upstream", upstream)
    top = _copy(x86, tmp_path)
    conf = (top / "repositories.conf").read_text().replace(str(x86.top.parent / "upstream"), str(upstream))
    (top / "repositories.conf").unlink()
    (top / "repositories.conf").write_text(conf)
    packages = upstream / "base" / "Packages"
    text = packages.read_bytes()
    packages.write_bytes(text.replace(b"Version: 1.36.1-1", b"Version: 1.36.1-9"))
    (upstream / "base" / "Packages.gz").write_bytes(gzip.compress(packages.read_bytes()))
    assert "does not match" in make(top, "manifest", PROFILE="generic").stderr

    packages.write_bytes(text)
    (upstream / "base" / "Packages.gz").write_bytes(gzip.compress(text))
    ipk = next((upstream / "base").glob("busybox_*.ipk"))
    ipk.write_bytes(ipk.read_bytes() + b"tampered")
    result = make(top, "image", PROFILE="generic", BIN_DIR=str(tmp_path / "bin"), ROOTFS_PARTSIZE="8")
    assert result.returncode == 2
    assert f"Checksum mismatch for {ipk.name}" in result.stderr


def test_clean_removes_outputs(x86: FixtureIB, tmp_path: Path) -> None:
    top = _copy(x86, tmp_path)
    (top / "bin").mkdir()
    (top / "tmp").mkdir(exist_ok=True)
    assert make(top, "clean").returncode == 0
    assert not (top / "bin").exists() and not (top / "tmp").exists()
    assert (top / "packages").is_dir()


# --- the Ed25519 verifier ---------------------------------------------------------------------------------


def test_ed25519_verifier_matches_rfc8032_and_pynacl() -> None:
    spec = importlib.util.spec_from_file_location(
        "mini_ib_ed25519", PROGRAM_DIR / "scripts" / "mini_ib_ed25519.py"
    )
    assert spec is not None and spec.loader is not None
    ed25519 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ed25519)
    # RFC 8032 section 7.1, test 2
    public = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    signature = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert ed25519.verify(public, b"\x72", signature)
    assert not ed25519.verify(public, b"\x73", signature)
    key = nacl.signing.SigningKey(b"\x07" * 32)
    message = b"sha256sums content\n" * 50
    good = key.sign(message).signature
    assert ed25519.verify(bytes(key.verify_key), message, good)
    assert not ed25519.verify(bytes(key.verify_key), message, good[:-1] + bytes([good[-1] ^ 1]))
