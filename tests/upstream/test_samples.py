"""Every file of ``shared/reference/samples`` read by the parser for its format, checked against values
known from the file itself. A sample added later without a reader here fails ``test_every_sample_is_read``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from asud.upstream.index_json import parse_index_json
from asud.upstream.make_info import parse_make_info
from asud.upstream.manifest import parse_manifest
from asud.upstream.packages_index import parse_packages
from asud.upstream.profiles_json import parse_profile_entry, parse_profiles_json
from asud.upstream.records import Dependency
from asud.upstream.repositories import format_repositories_conf, parse_repositories_conf
from asud.upstream.sha256sums import find_imagebuilder, parse_sha256sums
from asud.upstream.targets_json import parse_targets_json
from asud.upstream.usign import parse_public_key
from asud.upstream.version_order import apk_compare, release_key
from asud.upstream.versions_json import parse_versions_json

ASU = "asu-tests/upstream"
SNAP_TEST = f"{ASU}/snapshots/targets/testtarget/testsubtarget"
STUB_IB = f"{SNAP_TEST}/openwrt-imagebuilder-testtarget-testsubtarget.Linux-x86_64"

#: Files no upstream parser reads, and why.
NOT_UPSTREAM_FORMATS = {
    "README.md": "describes the samples",
    "imagebuilder-error-outputs.txt": "ImageBuilder error texts; the builder's error mapping reads them",
    f"{STUB_IB}/.config": "the stub IB's kconfig, not read from upstream",
    f"{STUB_IB}/pseudo_kernel_build_dir/tmp/fake_trash": "empty placeholder file",
}

Check = Callable[[Path], None]
CHECKS: dict[str, Check] = {}


def reads(*names: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        for name in names:
            CHECKS[name] = check
        return check
    return register


# -- version lists and targets ----------------------------------------------------------------------


@reads("versions.json")
def _live_versions(path: Path) -> None:
    doc = parse_versions_json(path.read_bytes())
    assert (doc.stable_version, doc.oldstable_version, doc.upcoming_version) == ("25.12.5", "24.10.8", "")
    assert len(doc.versions_list) == 89 and doc.versions_list[0] == "25.12.5"
    assert max(doc.versions_list, key=release_key) == doc.stable_version


@reads(f"{ASU}/.versions.json")
def _asu_versions(path: Path) -> None:
    doc = parse_versions_json(path.read_text())
    assert doc.upcoming_version == "24.10.0-rc6"
    assert doc.versions_list == ("1.2.3", "22.03.7", "23.05.5", "24.10.0-rc6")


@reads(f"{ASU}/releases/1.2.3/.targets.json", f"{ASU}/snapshots/.targets.json")
def _test_targets(path: Path) -> None:
    assert parse_targets_json(path.read_bytes()) == {"testtarget/testsubtarget": "testarch"}


@reads(f"{ASU}/releases/23.05.5/.targets.json")
def _real_targets(path: Path) -> None:
    targets = parse_targets_json(path.read_bytes())
    assert len(targets) == 75
    assert targets["x86/64"] == "x86_64" and targets["mediatek/filogic"] == "aarch64_cortex-a53"
    assert targets["ath79/generic"] == "mips_24kc" and targets["kirkwood/generic"] == "arm_xscale"


# -- profiles.json ----------------------------------------------------------------------------------


@reads(f"{ASU}/releases/1.2.3/targets/testtarget/testsubtarget/profiles.json")
def _profiles_21_02_era(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())
    assert doc.source_date_epoch == 1612136917  # a string in this era
    assert doc.version_code == "r15666-8019c54d8a" and doc.version_number == "SNAPSHOT"
    assert len(doc.raw["default_packages"]) == 34 and len(doc.default_packages) == 30  # repeats dropped
    assert doc.linux_kernel is None
    profile = doc.profiles["testprofile"]
    assert profile.titles == ({"title": "Not Real Device"},)
    assert profile.supported_devices == ()
    assert len(profile.images) == 6
    assert all(image.sha256_unsigned == image.sha256 for image in profile.images)
    assert {image.type for image in profile.images} == {"rootfs", "combined", "combined-efi"}


@reads(f"{SNAP_TEST}/profiles.json")
def _profiles_snapshot_test(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())
    assert doc.source_date_epoch == 1612136917 and doc.arch_packages == "testarch"
    generic = doc.profiles["generic"]
    assert generic.titles == ({"title": "Generic x86/64"},)
    assert generic.image_prefix == "openwrt-x86-64-generic"
    assert "kmod-igb" in generic.device_packages


@reads(f"{ASU}/releases/23.05.5/targets/ath79/generic/profiles.json")
def _profiles_23_05_ath79(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())
    assert (doc.target, doc.version_code, doc.source_date_epoch) == ("ath79/generic", "r24106-10cc5fcd00",
                                                                     1727094886)
    assert doc.linux_kernel is None  # 23.05.5 has no kmods split
    assert "opkg" in doc.default_packages
    carambola = doc.profiles["8dev_carambola2"]
    assert carambola.supported_devices == ("8dev,carambola2", "carambola2")
    assert carambola.titles == ({"model": "Carambola2", "vendor": "8devices"},)
    sysupgrade = next(image for image in carambola.images if image.type == "sysupgrade")
    assert sysupgrade.filesystem == "squashfs"
    assert sysupgrade.sha256_unsigned == "12d6b21303a784468aecf611d19b46abc69557510c329531080351f1fd777c73"


@reads(f"{ASU}/releases/23.05.5/targets/x86/64/profiles.json")
def _profiles_23_05_x86(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())
    generic = doc.profiles["generic"]
    assert generic.titles == ({"model": "x86/64", "vendor": "Generic"},)
    names = {image.name for image in generic.images}
    assert "openwrt-23.05.5-x86-64-generic-squashfs-combined-efi.img.gz" in names and len(names) == 6
    assert "grub2-bios-setup" in doc.default_packages


@reads(f"{ASU}/snapshots/targets/ath79/generic/profiles.json")
def _profiles_apk_snapshot(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())
    assert doc.linux_kernel is not None
    assert doc.linux_kernel.kmods_dir == "6.6.74-1-75d549fb5cfabb78b8a91bec585e5ecb"
    assert "apk-mbedtls" in doc.default_packages and "opkg" not in doc.default_packages
    assert doc.profiles["8dev_carambola2"].image_prefix == "openwrt-ath79-generic-8dev_carambola2"


@reads("profiles-23.05.4-ath79-generic-excerpt.json")
def _profiles_23_05_4_excerpt(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())
    assert list(doc.profiles) == ["8dev_carambola2", "8dev_lima", "adtran_bsap1800-v2"]
    adtran = doc.profiles["adtran_bsap1800-v2"]
    assert adtran.device_packages == ("-swconfig", "-uboot-envtools", "fconfig")
    assert adtran.titles == ({"model": "BSAP-1800", "variant": "v2", "vendor": "Adtran/Bluesocket"},)
    assert [image.type for image in adtran.images] == ["kernel", "rootfs", "sysupgrade", "kernel"]


@reads(f"{STUB_IB}/profiles.json")
def _profiles_written_by_stub_ib(path: Path) -> None:
    doc = parse_profiles_json(path.read_bytes())  # no arch_packages/default_packages in a BIN_DIR copy
    assert (doc.arch_packages, doc.default_packages, doc.source_date_epoch) == ("", (), 1612136917)
    image = doc.profiles["testprofile"].images[0]
    assert (image.name, image.sha256, image.filesystem) == (
        "openwrt-testtarget-testsubtarget-testprofile-sysupgrade.bin", "000", None)


@reads(f"{SNAP_TEST}/openwrt-testtarget-testsubtarget-testprofile.json")
def _per_image_info_json(path: Path) -> None:
    data = orjson.loads(path.read_bytes())
    entry = parse_profile_entry(data["id"], data)
    assert entry.id == "testprofile" and entry.supported_devices == ("testprofile",)
    assert entry.titles == ({"model": "Test1", "vendor": "The Test Comp"},)


# -- package indexes --------------------------------------------------------------------------------


@reads(f"{ASU}/snapshots/packages/testarch/base/Packages", f"{SNAP_TEST}/packages/Packages")
def _packages_old(path: Path) -> None:
    records = parse_packages(path.read_text())
    assert [r.name for r in records] == ["base-files", "block-mount", "blockd"]
    block_mount = records[1]
    assert block_mount.version == "2020-01-21-deb745f8-1"
    assert (Dependency("libubox20191228"),) in block_mount.depends
    assert block_mount.sha256 == "5eaa1bb7e3df6c354fa8dec3c30e77d0e8dc0b601923eba22b5ae3319b868a8a"
    assert (block_mount.size, block_mount.installed_size, block_mount.architecture) == (23512, 22892,
                                                                                        "mips_mips32")


@reads(f"{ASU}/snapshots/packages/testarch/base/Packages.manifest")
def _packages_manifest_feed(path: Path) -> None:
    records = {r.name: r for r in parse_packages(path.read_text())}
    assert list(records) == ["464xlat", "6in4", "6rd"]
    assert records["464xlat"].description.splitlines() == [
        "464xlat provides support to deploy limited IPv4 access services to mobile",
        "and wireline IPv6-only edge networks without encapsulation (RFC6877)",
    ]
    assert records["6in4"].architecture == "all" and records["6in4"].filename == "6in4_26_all.ipk"
    assert records["6rd"].depends == ((Dependency("libc"),), (Dependency("kmod-sit"),))


@reads(f"{SNAP_TEST}/packages/Packages.manifest", "generated/Packages")
def _packages_2021(path: Path) -> None:
    records = parse_packages(path.read_text())
    assert [(r.name, r.version) for r in records] == [
        ("base-files", "1403-r15666-8019c54d8a"),
        ("block-mount", "2021-01-04-c53b1882-1"),
        ("blockd", "2021-01-04-c53b1882-1"),
    ]
    assert records[0].sha256 == "9f980084a0ee1337f63c0fe30ea9d76e0fc7596dc57ceafa295f2a80d743f78e"
    assert (Dependency("libjson-c5"),) in records[2].depends


def _generated_packages(samples: Path) -> dict[str, str]:
    return {r.name: r.version for r in parse_packages((samples / "generated/Packages").read_text())}


@reads("generated/index.json.v1")
def _index_v1(path: Path) -> None:
    index = parse_index_json(path.read_bytes())
    assert (index.version, index.architecture) == (1, "x86_64")
    assert index.packages == _generated_packages(path.parents[1])


@reads("generated/index.json.v2")
def _index_v2(path: Path) -> None:
    index = parse_index_json(path.read_bytes())
    assert (index.version, index.architecture, index.abi_stripped) == (2, "x86_64", True)
    assert index.packages == _generated_packages(path.parents[1])


@reads("generated/manifest-from-make-index-json.txt")
def _generated_manifest(path: Path) -> None:
    assert parse_manifest(path.read_text()) == _generated_packages(path.parents[1])


# -- ImageBuilder outputs ---------------------------------------------------------------------------


@reads(f"{STUB_IB}/openwrt-testtarget-testsubtarget-testprofile.info")
def _stub_make_info(path: Path) -> None:
    info = parse_make_info(path.read_text())
    assert (info.target, info.revision, info.architecture) == ("testtarget/testsubtarget",
                                                               "r12647-cb44ab4f5d", None)
    assert info.default_packages[:3] == ("base-files", "libc", "libgcc") and len(info.default_packages) == 28
    assert list(info.profiles) == ["Default", "8dev_carambola2", "testprofile"]
    assert info.profiles["Default"].title == "Default Profile (all drivers)"
    assert not info.profiles["Default"].has_image_metadata
    test = info.profiles["testprofile"]
    assert test.packages == ("kmod-usb2", "kmod-usb-chipidea2", "kmod-usb-storage", "-swconfig")
    assert test.supported_devices == ("testvendor,testprofile", "testprofile")


@reads("make-info-real-22.03.0-mvebu-cortexa9.txt")
def _real_make_info(path: Path) -> None:
    # Two outputs quoted from two issues, each introduced by "# Source:" comment lines.
    blocks = path.read_text().split("# Source:")[1:]
    first, second = (
        parse_make_info("\n".join(line for line in block.splitlines()[1:] if not line.startswith("#")))
        for block in blocks
    )
    assert (first.target, first.architecture) == ("mvebu/cortexa9", "arm")
    assert first.revision == "r19685-512e76967f"
    assert first.default_packages[0] == "base-files" and first.default_packages[-1] == "ppp-mod-pppoe"
    assert first.profiles == {}
    assert (second.target, second.architecture, second.revision) == ("x86/64", "x86_64", "r28114-84665993d6")


@reads(f"{STUB_IB}/openwrt-testtarget-testsubtarget-testprofile.manifest")
def _stub_manifest(path: Path) -> None:
    manifest = parse_manifest(path.read_text())
    assert len(manifest) == 117
    assert (manifest["test1"], manifest["busybox"]) == ("1.0", "1.31.1-1")
    assert manifest["kernel"] == "4.14.169-1-0b48c80107a57fc6efd13f54e5fffa14"
    assert manifest["luci"] == "git-20.047.38617-2fa9885-1"
    assert manifest["libubox20191228"] == "2020-01-20-43a103ff-1"  # opkg era: ABI names kept


@reads(f"{STUB_IB}/sha256sums")
def _stub_sha256sums(path: Path) -> None:
    sums = parse_sha256sums(path.read_text())
    assert sorted(sums) == [
        "openwrt-testtarget-testsubtarget-testprofile-sysupgrade.bin",
        "openwrt-testtarget-testsubtarget-testprofile.json",
        "openwrt-testtarget-testsubtarget-testprofile.manifest",
    ]
    image = path.parent / "openwrt-testtarget-testsubtarget-testprofile-sysupgrade.bin"
    assert sums[image.name] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert find_imagebuilder(sums) is None


@reads(f"{STUB_IB}/openwrt-testtarget-testsubtarget-testprofile-sysupgrade.bin")
def _stub_image(path: Path) -> None:
    assert path.read_bytes() == b"fake image\n"  # its hash is checked against sha256sums above


@reads(f"{STUB_IB}/repositories.conf")
def _stub_repositories(path: Path) -> None:
    assert path.read_text() == "" and parse_repositories_conf(path.read_text()) == []


@reads("distfeeds-examples.txt")
def _distfeeds(path: Path) -> None:
    entries = parse_repositories_conf(path.read_text())
    feeds = {e.name: e.url for e in entries if e.kind == "repository"}
    assert list(feeds) == ["openwrt_core", "openwrt_base", "openwrt_kmods", "openwrt_luci",
                           "openwrt_packages", "openwrt_routing", "openwrt_telephony"]
    assert feeds["openwrt_kmods"].endswith("/kmods/6.6.93-1-5642ee3ae5a6da3ce336f51cf968083c")
    assert all(e.enabled for e in entries if e.kind == "repository")
    assert format_repositories_conf(entries) == path.read_text()


# -- keys and version vectors -----------------------------------------------------------------------


@reads("openwrt-usign-and-apk-public-keys.txt")
def _official_keys(path: Path) -> None:
    checked = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and len(parts[1]) == 16 and parts[2].startswith("RW"):
            key = parse_public_key(parts[2])
            assert key.fingerprint == parts[1], parts[0]
            checked[parts[0]] = key.fingerprint
    assert checked["24.10"] == "d310c6f2833e97f7" and checked["snapshot"] == "b5043e70f9a75cde"
    assert len(checked) == 8


@reads("apk-version.data")
def _apk_vectors(path: Path) -> None:
    lines = [line.split("#")[0].split() for line in path.read_text().splitlines()]
    ordered = [parts for parts in lines if len(parts) == 3 and parts[1] in ("<", "=", ">")]
    assert len(ordered) == 738
    assert all(apk_compare(a, b) == {"<": -1, "=": 0, ">": 1}[op] for a, op, b in ordered)


def _sample_files(samples_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(samples_dir)) for p in samples_dir.rglob("*") if p.is_file())


def test_every_sample_is_read(samples_dir: Path) -> None:
    files = set(_sample_files(samples_dir))
    unread = files - set(CHECKS) - set(NOT_UPSTREAM_FORMATS)
    assert unread == set(), "samples without a reader in test_samples.py"
    assert set(CHECKS) <= files, "readers for samples that no longer exist"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_sample(samples_dir: Path, name: str) -> None:
    CHECKS[name](samples_dir / name)
