"""The demo download tree: deterministic, signed, self-consistent, and carrying each era's quirks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from asud.demo.devices import SMALL_FLASH_DEVICE
from asud.demo.generator import TreeInfo, generate_tree
from asud.upstream.usign import parse_public_key, verify
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree  # noqa: F401  (session fixture)


def _digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _stanzas(text: str) -> list[dict[str, str]]:
    result = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value.strip()
        result.append(fields)
    return result


def _signed_dirs(info: TreeInfo) -> list[Path]:
    """Every directory with a ``sha256sums``: target dirs and ``packages/<arch>``."""
    return sorted(path.parent for path in info.root.rglob("sha256sums"))


def _feed_dirs(info: TreeInfo) -> list[Path]:
    return sorted({path.parent for name in ("Packages", "packages.adb") for path in info.root.rglob(name)})


def _index_names(feed: Path) -> dict[str, dict[str, object]]:
    """Packages of a feed by name, from ``Packages`` or the demo ``packages.adb``."""
    if (feed / "Packages").exists():
        return {s["Package"]: dict(s) for s in _stanzas((feed / "Packages").read_text())}
    body = (feed / "packages.adb").read_bytes().split(b"\n", 3)[3]
    return {p["name"]: p for p in json.loads(body)["packages"]}


@pytest.fixture(scope="module")
def tree(demo_tree: DemoTree) -> TreeInfo:  # noqa: F811
    return demo_tree[0]


def test_same_seed_gives_same_bytes(tree: TreeInfo, tmp_path: Path) -> None:
    again = generate_tree(tmp_path / "again", seed=tree.seed, base_url=tree.base_url)
    assert _digests(again.root) == _digests(tree.root)
    other = generate_tree(
        tmp_path / "other", seed=tree.seed + 1, base_url=tree.base_url, with_imagebuilders=False
    )
    assert other.fingerprint != tree.fingerprint


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_tree(tmp_path, with_imagebuilders=False)
    assert (tmp_path / "precious.txt").exists()


def test_layout_and_versions(tree: TreeInfo) -> None:
    versions = json.loads((tree.root / ".versions.json").read_text())
    assert versions == {
        "stable_version": "25.12.1",
        "oldstable_version": "24.10.5",
        "upcoming_version": "",
        "versions_list": ["25.12.1", "24.10.5", "24.10.4", "23.05.5"],
    }
    assert tree.versions == ["23.05.5", "24.10.4", "24.10.5", "25.12.1", "SNAPSHOT"]
    assert (tree.root / "keys" / f"{tree.fingerprint}.pub").read_text() == tree.public_key_text
    for version in tree.versions:
        base = tree.version_dir(version)
        assert json.loads((base / ".targets.json").read_text()) == tree.targets[version]
        assert set(tree.targets[version]) == {"x86/64", "ath79/generic", "mediatek/filogic"}
        overview = json.loads((base / ".overview.json").read_text())
        assert overview["release"] == version
        assert {"id": "generic", "target": "x86/64", "titles": [{"title": "Generic x86/64"}]} in overview[
            "profiles"
        ]


def test_signatures_verify_with_signify(tree: TreeInfo) -> None:
    signify = require_executable("signify-openbsd")
    public_key = tree.root / "keys" / f"{tree.fingerprint}.pub"
    dirs = _signed_dirs(tree)
    assert len(dirs) == 5 * (3 + 3)  # per version: 3 target dirs + 3 arch dirs
    for directory in dirs:
        result = subprocess.run(
            [signify, "-V", "-p", str(public_key), "-m", "sha256sums", "-x", "sha256sums.sig"],
            cwd=directory,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, (directory, result.stderr)


def test_sha256sums_list_every_file_with_its_hash(tree: TreeInfo) -> None:
    for directory in _signed_dirs(tree):
        listed = {}
        for line in (directory / "sha256sums").read_text().splitlines():
            digest, name = line.split(" *", 1)
            listed[name] = digest
        present = {k: v for k, v in _digests(directory).items() if k not in ("sha256sums", "sha256sums.sig")}
        assert listed == present, directory
        assert list(listed) == sorted(listed)


def test_indexes_list_exactly_the_files_present(tree: TreeInfo) -> None:
    key = parse_public_key(tree.public_key_text)
    feeds = _feed_dirs(tree)
    assert len(feeds) == 5 * 3 * 3 + 5 * 3 + 4 * 3  # arch feeds, target packages/, kmods/<kver>/ (not 23.05)
    for feed in feeds:
        packages = _index_names(feed)
        files = {p.name for p in feed.iterdir() if p.suffix in (".ipk", ".apk")}
        if (feed / "Packages").exists():
            assert {s["Filename"] for s in packages.values()} == files, feed
            verify((feed / "Packages").read_bytes(), (feed / "Packages.sig").read_text(), [key])
            assert gzip.decompress((feed / "Packages.gz").read_bytes()) == (feed / "Packages").read_bytes()
            for stanza in packages.values():
                data = (feed / str(stanza["Filename"])).read_bytes()
                assert hashlib.sha256(data).hexdigest() == stanza["SHA256sum"]
                assert len(data) == int(str(stanza["Size"]))
        else:
            assert {str(p["file"]) for p in packages.values()} == files, feed
            for entry in packages.values():
                assert hashlib.sha256((feed / str(entry["file"])).read_bytes()).hexdigest() == entry["sha256"]


def test_at_least_80_packages_per_architecture(tree: TreeInfo) -> None:
    for version in tree.versions:
        for arch in set(tree.targets[version].values()):
            feeds = tree.version_dir(version) / "packages" / arch
            names = [name for feed in ("base", "luci", "packages") for name in _index_names(feeds / feed)]
            assert len(names) >= 80, (version, arch, len(names))


def test_required_relations_exist(tree: TreeInfo) -> None:
    feeds = tree.version_dir("24.10.4") / "packages" / "x86_64"
    stanzas = {
        name: s for feed in ("base", "luci", "packages") for name, s in _index_names(feeds / feed).items()
    }
    assert " | " in str(stanzas["luci-ssl"]["Depends"])  # alternatives
    assert stanzas["wpad-basic-mbedtls"]["Provides"] == "hostapd, wpad, wpad-basic"
    assert "wpad-basic-wolfssl" in str(stanzas["wpad-basic-mbedtls"]["Conflicts"])
    assert "firewall" in str(stanzas["firewall4"]["Conflicts"])
    abi = stanzas["libubox20240329"]
    assert abi["ABIVersion"] == "20240329" and abi["Provides"] == "libubox"
    assert re.search(r"ucode \(>= [\d.]+\)", str(stanzas["owut"]["Depends"]))
    assert f"libcurl4 (= {stanzas['libcurl4']['Version']})" in str(stanzas["curl"]["Depends"])

    profiles = json.loads((tree.version_dir("24.10.4") / "targets/x86/64/profiles.json").read_text())
    kernel = profiles["linux_kernel"]
    kmods = (
        tree.version_dir("24.10.4") / "targets/x86/64/kmods" / f"{kernel['version']}-1-{kernel['vermagic']}"
    )
    exact = f"kernel (= {kernel['version']}~{kernel['vermagic']}-r1)"
    kmod_stanzas = _index_names(kmods)
    assert kmod_stanzas and all(str(s["Depends"]).startswith(exact) for s in kmod_stanzas.values())


def test_era_quirks(tree: TreeInfo) -> None:
    def names(version: str) -> set[str]:
        feeds = tree.version_dir(version) / "packages" / "mips_24kc"
        return {n for feed in ("base", "luci", "packages") for n in _index_names(feeds / feed)}

    def index_json(version: str, feed: str = "base") -> dict[str, Any]:
        return json.loads((tree.version_dir(version) / "packages/x86_64" / feed / "index.json").read_text())

    assert {"auc", "firewall", "opkg"} <= names("23.05.5") and "owut" not in names("23.05.5")
    assert {"owut", "opkg", "vim"} <= names("24.10.4") and not {"auc", "firewall"} & names("24.10.4")
    assert {"owut", "apk-mbedtls"} <= names("25.12.1") and not {"opkg", "vim", "auc"} & names("25.12.1")
    assert "libubox20230523" in index_json("23.05.5")["packages"]
    assert "version" not in index_json("23.05.5")
    assert index_json("24.10.4")["version"] == 2 and "libubox" in index_json("24.10.4")["packages"]

    old, new = index_json("24.10.4", "luci")["packages"], index_json("24.10.5", "luci")["packages"]
    assert old["luci"] != new["luci"]
    assert (
        index_json("24.10.4", "packages")["packages"]["curl"]
        != index_json("24.10.5", "packages")["packages"]["curl"]
    )

    x86_2305 = json.loads((tree.version_dir("23.05.5") / "targets/x86/64/profiles.json").read_text())
    assert "linux_kernel" not in x86_2305 and "opkg" in x86_2305["default_packages"]
    assert [i["type"] for i in x86_2305["profiles"]["generic"]["images"]].count("combined-efi") == 2
    ath79_2512 = json.loads((tree.version_dir("25.12.1") / "targets/ath79/generic/profiles.json").read_text())
    assert "apk-mbedtls" in ath79_2512["default_packages"] and "opkg" not in ath79_2512["default_packages"]
    assert ath79_2512["profiles"][SMALL_FLASH_DEVICE]["file_size_limits"]["image"] < 1024 * 1024
    assert len(ath79_2512["profiles"]) >= 6
    assert any("," in device for p in ath79_2512["profiles"].values() for device in p["supported_devices"])

    assert (
        tree.version_dir("23.05.5") / "targets/x86/64/openwrt-imagebuilder-23.05.5-x86-64.Linux-x86_64.tar.xz"
    ).exists()
    assert (
        tree.version_dir("24.10.4")
        / "targets/x86/64/openwrt-imagebuilder-24.10.4-x86-64.Linux-x86_64.tar.zst"
    ).exists()
    assert (
        tree.version_dir("SNAPSHOT") / "targets/x86/64/openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst"
    ).exists()


def _member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile(name)
        assert member is not None, name
        return member.read()


def test_packages_are_real_archives_naming_their_version(tree: TreeInfo) -> None:
    ipk = next((tree.version_dir("24.10.5") / "packages/x86_64/packages").glob("curl_*.ipk")).read_bytes()
    assert _member(ipk, "./debian-binary") == b"2.0\n"
    control = _member(_member(ipk, "./control.tar.gz"), "./control")
    assert b"Package: curl\nVersion: 8.14.1-r1\n" in control
    data = _member(ipk, "./data.tar.gz")
    assert _member(data, "./usr/bin/curl").startswith(b"curl 8.14.1-r1\n")
    apk = next((tree.version_dir("25.12.1") / "packages/aarch64_cortex-a53/base").glob("libubox2*.apk"))
    with tarfile.open(apk) as archive:
        assert archive.getnames()[0] == ".PKGINFO"
    info = _member(apk.read_bytes(), ".PKGINFO").decode()
    assert "provides = libubox\n" in info and "tags = openwrt:abiversion=" in info


@pytest.mark.parametrize("version", ["23.05.5", "24.10.4", "25.12.1", "SNAPSHOT"])
def test_imagebuilder_of_each_era_runs_make_info(tree: TreeInfo, tmp_path: Path, version: str) -> None:
    require_executable("make")
    archive = next((tree.version_dir(version) / "targets/ath79/generic").glob("openwrt-imagebuilder-*"))
    decompress = ["xz", "-dc"] if archive.suffix == ".xz" else ["zstd", "-dc"]
    require_executable(decompress[0])
    tar = subprocess.run([*decompress, str(archive)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as members:
        members.extractall(tmp_path, filter="data")
    (ib,) = tmp_path.iterdir()
    assert (ib / "keys" / tree.fingerprint).read_text() == tree.public_key_text
    assert ((ib / "repositories").exists()) == (version in ("25.12.1", "SNAPSHOT"))
    assert not list(ib.glob("packages/*busybox*"))  # feed packages come from the repositories
    result = subprocess.run(["make", "info"], cwd=ib, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    revision = json.loads((ib / ".targetinfo.json").read_text())["revision"]
    assert f'Current Revision: "{revision}"' in result.stdout
    assert f"{SMALL_FLASH_DEVICE}:" in result.stdout


@pytest.mark.slow
def test_small_flash_device_fits_defaults_but_not_python(tree: TreeInfo, tmp_path: Path) -> None:
    """The flash limit of the small device is set so that only the big payload package overflows it."""
    require_executable("make")
    require_executable("mksquashfs", "squashfs-tools")
    archive = next((tree.version_dir("24.10.4") / "targets/ath79/generic").glob("openwrt-imagebuilder-*"))
    tar = subprocess.run(
        [require_executable("zstd"), "-dc", str(archive)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as members:
        members.extractall(tmp_path, filter="data")
    (ib,) = tmp_path.iterdir()

    def build(packages: str, out: str) -> subprocess.CompletedProcess[str]:
        command = [
            "make",
            "image",
            f"PROFILE={SMALL_FLASH_DEVICE}",
            f"PACKAGES={packages}",
            f"BIN_DIR={ib / out}",
        ]
        return subprocess.run(command, cwd=ib, capture_output=True, text=True, timeout=120)

    fits = build("luci", "fits")
    assert fits.returncode == 0 and "is too big" not in fits.stderr, fits.stderr
    assert list((ib / "fits").glob("*-squashfs-sysupgrade.bin"))
    too_big = build("luci python3-light", "too-big")
    assert "is too big" in too_big.stderr
    assert not list((ib / "too-big").glob("*-squashfs-sysupgrade.bin"))
