"""``Catalog``: what the API and the builder read, on the catalog loaded from the demo upstream."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from asud.catalog import Catalog
from asud.config import DistroSettings, PackageChange
from asud.demo.signing import demo_key
from asud.errors import SignatureError
from tests.catalog.helpers import load_demo, replace_file
from tests.support.upstream import DemoTree


def test_profile_lookup_by_id_board_name_and_supported_devices(catalog: Catalog) -> None:
    def lookup(name: str) -> str | None:
        entry = catalog.profile("openwrt", "24.10.4", "ath79/generic", name)
        return entry.id if entry else None

    assert lookup("tplink_archer-c7-v5") == "tplink_archer-c7-v5"
    assert lookup("tplink,archer-c7-v5") == "tplink_archer-c7-v5"  # LuCI sends the board name
    assert lookup("tplink,archer-a7-v5") == "tplink_archer-c7-v5"  # another supported device
    assert lookup("tplink_archer-a7-v5") == "tplink_archer-c7-v5"
    assert lookup("no,such-device") is None
    assert catalog.profile("openwrt", "24.10.4", "no/target", "generic") is None


def test_a_target_with_only_generic_accepts_any_profile(catalog: Catalog) -> None:
    entry = catalog.profile("openwrt", "24.10.4", "x86/64", "some-pc-board")
    assert entry is not None and entry.id == "generic"


def test_branches_carry_versions_targets_and_filtered_package_changes(catalog: Catalog) -> None:
    branches = catalog.branches("openwrt")
    assert list(branches) == ["SNAPSHOT", "25.12", "24.10", "23.05"]
    b2410 = branches["24.10"]
    assert b2410.versions == ["24.10.5", "24.10.4"]
    assert b2410.path == "releases/{version}" and not b2410.snapshot and b2410.branch_off_rev == 27990
    assert b2410.targets == {
        "ath79/generic": "mips_24kc",
        "mediatek/filogic": "aarch64_cortex-a53",
        "x86/64": "x86_64",
    }
    sources = [change.source for change in b2410.package_changes]
    assert "firewall" in sources and "auc" in sources and "opkg" not in sources  # 28056 > 27990
    assert all(change.revision <= 27990 for change in b2410.package_changes)
    snapshot = branches["SNAPSHOT"]
    assert snapshot.snapshot and snapshot.path == "snapshots" and snapshot.versions == ["SNAPSHOT"]
    assert "opkg" in [change.source for change in snapshot.package_changes]
    data = b2410.to_json()
    assert data["path_packages"] == "DEPRECATED" and data["branch_off_rev"] == 27990
    assert {"source": "kmod-nft-nat6", "revision": 20282, "mandatory": True} in data["package_changes"]
    assert {"source": "firewall", "target": "firewall4", "revision": 18611, "mandatory": False} in data[
        "package_changes"
    ]


def test_latest_is_the_newest_release_of_each_branch(catalog: Catalog) -> None:
    assert catalog.latest("openwrt") == ["25.12.1", "24.10.5", "23.05.5"]
    assert catalog.latest("unknown") == [] and catalog.branches("unknown") == {}


def test_package_changes_and_branch_offsets_come_from_the_distro_settings(catalog: Catalog) -> None:
    own = DistroSettings(
        public_keys=["x"],
        package_changes=[PackageChange(source="foo", target="bar", revision=100)],
        branch_off_rev={"24.10": 1},
    )
    data = catalog.data("openwrt")
    assert data is not None
    reconfigured = Catalog({"openwrt": data}, {"openwrt": own}, catalog.feeds)
    assert reconfigured.branches("openwrt")["SNAPSHOT"].package_changes == own.package_changes
    b2410 = reconfigured.branches("openwrt")["24.10"]
    assert b2410.branch_off_rev == 1 and b2410.package_changes == []  # revision 100 > 1


def test_version_and_target(catalog: Catalog) -> None:
    info = catalog.version("openwrt", "25.12.1")
    assert info is not None and info.package_manager == "apk" and info.path == "releases/25.12.1"
    snapshot = catalog.version("openwrt", "SNAPSHOT")
    assert snapshot is not None and snapshot.path == "snapshots" and snapshot.branch == "SNAPSHOT"
    assert catalog.version("openwrt", "1.0.0") is None
    target = catalog.target("openwrt", "24.10.4", "ath79/generic")
    assert target is not None
    assert target.arch_packages == "mips_24kc" and target.version_code.startswith("r")
    assert target.linux_kernel is not None and "kernel" not in target.default_packages
    assert "tplink_archer-c7-v5" in target.profiles
    data = target.profile_json("tplink_archer-c7-v5")
    assert data["id"] == "tplink_archer-c7-v5" and data["metadata_version"] == 1
    assert data["target"] == "ath79/generic" and data["version_number"] == "24.10.4"
    assert data["images"] and "profiles" not in data
    document = target.document()
    assert document.profiles["tplink_archer-c7-v5"] == target.profiles["tplink_archer-c7-v5"]


@pytest_twisted.ensureDeferred
async def test_package_index_spans_target_kmods_and_arch_feeds(catalog: Catalog) -> None:
    index = await catalog.package_index("openwrt", "24.10.4", "ath79/generic")
    assert index.package_manager == "opkg" and index.detailed
    assert "luci" in index and "base-files" in index and "kernel" in index and "libc" in index
    assert any(record.name.startswith("kmod-") for record in index.records)
    libubox = index.get("libubox")
    assert libubox is not None and libubox.abi_version and libubox.name != "libubox"
    apk = await catalog.package_index("openwrt", "25.12.1", "x86/64")
    assert apk.package_manager == "apk" and not apk.detailed and "luci" in apk
    assert len(await catalog.package_index("openwrt", "24.10.4", "no/target")) == 0


@pytest_twisted.ensureDeferred
async def test_package_index_is_cached_until_the_feeds_change(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    catalog, _ = await load_demo(demo_tree, url=url)
    first = await catalog.package_index("openwrt", "24.10.5", "x86/64")
    assert await catalog.package_index("openwrt", "24.10.5", "x86/64") is first
    # Concurrent first uses share one load.
    loading = [catalog.package_index("openwrt", "24.10.5", "mediatek/filogic") for _ in range(2)]
    other = await loading[0]
    assert await loading[1] is other
    # Upstream re-signs the x86_64 feed list: the refresh gives a new index with the same packages.
    sums = root / "releases/24.10.5/packages/x86_64/sha256sums"
    changed = sums.read_bytes() + b"0" * 64 + b" *extra.txt\n"
    replace_file(sums, changed)
    replace_file(sums.with_name("sha256sums.sig"), demo_key(demo_tree[0].seed).sign(changed).encode())
    refreshed, report = await load_demo(demo_tree, url=url, previous=catalog)
    assert report.ok and report.changed and refreshed.generation == catalog.generation + 1
    second = await refreshed.package_index("openwrt", "24.10.5", "x86/64")
    assert second is not first and second.versions() == first.versions()
    # Targets whose feeds did not change keep their loaded index across the refresh.
    assert await refreshed.package_index("openwrt", "24.10.5", "mediatek/filogic") is other
    refreshed.invalidate()
    assert await refreshed.package_index("openwrt", "24.10.5", "x86/64") is not second


@pytest_twisted.ensureDeferred
async def test_a_feed_cache_of_one_entry_still_answers(demo_tree: DemoTree) -> None:
    small, report = await load_demo(demo_tree, catalog={"feed_cache_entries": 1})
    assert report.ok
    a = await small.package_index("openwrt", "24.10.4", "ath79/generic")
    b = await small.package_index("openwrt", "24.10.4", "x86/64")
    assert "luci" in a and "luci" in b
    assert await small.package_index("openwrt", "24.10.4", "ath79/generic") is not a  # evicted, rebuilt


@pytest_twisted.ensureDeferred
async def test_json_indexes(catalog: Catalog) -> None:
    arch = await catalog.arch_index("openwrt", "24.10.4", "mips_24kc")
    assert "luci" in arch and "libubox" in arch and not any(name.startswith("kmod-") for name in arch)
    target = await catalog.target_index("openwrt", "24.10.4", "ath79/generic")
    assert target["architecture"] == "mips_24kc"
    assert "base-files" in target["packages"] and any(name.startswith("kmod-") for name in target["packages"])
    assert "kernel" not in target["packages"]
    unknown = await catalog.target_index("openwrt", "24.10.4", "no/target")
    assert unknown == {"architecture": "", "packages": {}}
    assert await catalog.arch_index("openwrt", "24.10.4", "no_arch") == {}
    assert catalog.distros() == ["openwrt"]


@pytest_twisted.ensureDeferred
async def test_a_feed_that_fails_verification_fails_the_index(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    catalog, report = await load_demo(demo_tree, url=url)
    assert report.ok
    luci = root / "releases/24.10.4/packages/mips_24kc/luci/Packages"
    replace_file(luci, luci.read_bytes() + b"\nPackage: evil\nVersion: 1\n")
    try:
        await catalog.package_index("openwrt", "24.10.4", "ath79/generic")
    except SignatureError as error:
        assert error.detail.startswith(f"{url}/releases/24.10.4/packages/mips_24kc/luci/Packages: ")
    else:
        raise AssertionError("a tampered index was used")
    # Remembered until upstream changes: the next use fails the same way without a new download.
    try:
        await catalog.arch_index("openwrt", "24.10.4", "mips_24kc")
    except SignatureError:
        pass
    else:
        raise AssertionError("a tampered index was used")
