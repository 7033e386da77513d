"""``Catalog``: what the API and the builder read, on a catalog synced from the demo upstream."""

from __future__ import annotations

from sqlalchemy import update

from sysup.catalog.models import PackageFeed
from sysup.catalog.queries import Catalog
from sysup.config import DistroSettings, PackageChange


def test_profile_lookup_by_id_board_name_and_supported_devices(synced: Catalog) -> None:
    def lookup(name: str) -> str | None:
        entry = synced.profile("openwrt", "24.10.4", "ath79/generic", name)
        return entry.id if entry else None

    assert lookup("tplink_archer-c7-v5") == "tplink_archer-c7-v5"
    assert lookup("tplink,archer-c7-v5") == "tplink_archer-c7-v5"  # LuCI sends the board name
    assert lookup("tplink,archer-a7-v5") == "tplink_archer-c7-v5"  # another supported device
    assert lookup("tplink_archer-a7-v5") == "tplink_archer-c7-v5"
    assert lookup("no,such-device") is None
    assert synced.profile("openwrt", "24.10.4", "no/target", "generic") is None


def test_a_target_with_only_generic_accepts_any_profile(synced: Catalog) -> None:
    entry = synced.profile("openwrt", "24.10.4", "x86/64", "some-pc-board")
    assert entry is not None and entry.id == "generic"


def test_branches_carry_versions_targets_and_filtered_package_changes(synced: Catalog) -> None:
    branches = synced.branches("openwrt")
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


def test_latest_is_the_newest_release_of_each_branch(synced: Catalog) -> None:
    assert synced.latest("openwrt") == ["25.12.1", "24.10.5", "23.05.5"]
    assert synced.latest("unknown") == [] and synced.branches("unknown") == {}


def test_package_changes_and_branch_offsets_come_from_the_distro_settings(synced: Catalog) -> None:
    own = DistroSettings(
        public_keys=["x"],
        package_changes=[PackageChange(source="foo", target="bar", revision=100)],
        branch_off_rev={"24.10": 1},
    )
    catalog = Catalog(synced._session_factory, {"openwrt": own})
    assert catalog.branches("openwrt")["SNAPSHOT"].package_changes == own.package_changes
    b2410 = catalog.branches("openwrt")["24.10"]
    assert b2410.branch_off_rev == 1 and b2410.package_changes == []  # revision 100 > 1


def test_version_and_target(synced: Catalog) -> None:
    info = synced.version("openwrt", "25.12.1")
    assert info is not None and info.package_manager == "apk" and info.path == "releases/25.12.1"
    snapshot = synced.version("openwrt", "SNAPSHOT")
    assert snapshot is not None and snapshot.path == "snapshots" and snapshot.branch == "SNAPSHOT"
    assert synced.version("openwrt", "1.0.0") is None
    target = synced.target("openwrt", "24.10.4", "ath79/generic")
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


def test_package_index_spans_target_kmods_and_arch_feeds(synced: Catalog) -> None:
    index = synced.package_index("openwrt", "24.10.4", "ath79/generic")
    assert index.package_manager == "opkg" and index.detailed
    assert "luci" in index and "base-files" in index and "kernel" in index and "libc" in index
    assert any(record.name.startswith("kmod-") for record in index.records)
    libubox = index.get("libubox")
    assert libubox is not None and libubox.abi_version and libubox.name != "libubox"
    apk = synced.package_index("openwrt", "25.12.1", "x86/64")
    assert apk.package_manager == "apk" and not apk.detailed and "luci" in apk
    assert len(synced.package_index("openwrt", "24.10.4", "no/target")) == 0


def test_package_index_is_cached_until_the_feeds_change(synced: Catalog) -> None:
    first = synced.package_index("openwrt", "24.10.5", "x86/64")
    assert synced.package_index("openwrt", "24.10.5", "x86/64") is first
    with synced._session_factory.begin() as session:
        session.execute(
            update(PackageFeed)
            .where(PackageFeed.version == "24.10.5", PackageFeed.key == "x86_64", PackageFeed.feed == "luci")
            .values(index_sha256="0" * 64)
        )
    second = synced.package_index("openwrt", "24.10.5", "x86/64")
    assert second is not first and second.versions() == first.versions()
    synced.invalidate()
    assert synced.package_index("openwrt", "24.10.5", "x86/64") is not second


def test_json_indexes(synced: Catalog) -> None:
    arch = synced.arch_index("openwrt", "24.10.4", "mips_24kc")
    assert "luci" in arch and "libubox" in arch and not any(name.startswith("kmod-") for name in arch)
    target = synced.target_index("openwrt", "24.10.4", "ath79/generic")
    assert target["architecture"] == "mips_24kc"
    assert "base-files" in target["packages"] and any(name.startswith("kmod-") for name in target["packages"])
    assert "kernel" not in target["packages"]
    assert synced.target_index("openwrt", "24.10.4", "no/target") == {"architecture": "", "packages": {}}
    assert synced.distros() == ["openwrt"]
