"""The ``/json/v1`` documents as clients read them (clients-contract §6.6, auc's per-profile JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from asud.config import PackageChange
from asud.http.json_documents import (
    build_at,
    overview_document,
    package_change_json,
    profile_document,
    version_paths,
)
from asud.upstream.records import ImageEntry, ProfileEntry


@dataclass
class _Branch:
    """Shaped like the catalog's ``BranchInfo``."""

    name: str
    path: str
    snapshot: bool
    versions: list[str]
    targets: dict[str, str]
    branch_off_rev: int | None = None
    enabled: bool = True
    package_changes: list[PackageChange] = field(default_factory=list)


BRANCHES = {
    "24.10": _Branch(
        "24.10",
        "releases/{version}",
        False,
        ["24.10.5", "24.10.4"],
        {"x86/64": "x86_64"},
        27990,
        package_changes=[
            PackageChange(source="firewall", target="firewall4", revision=18611),
            PackageChange(source="kmod-nft-nat6", revision=20282, mandatory=True),
        ],
    ),
    "SNAPSHOT": _Branch("SNAPSHOT", "snapshots", True, ["SNAPSHOT"], {"x86/64": "x86_64"}),
}


def test_overview_has_branches_keyed_by_name_with_what_clients_need() -> None:
    document = overview_document(
        BRANCHES, ["25.12.1", "24.10.5"], upstream_url="http://up", server={"max_defaults_length": 20480}
    )
    assert document["latest"] == ["25.12.1", "24.10.5"]
    assert document["upstream_url"] == "http://up"
    branch = document["branches"]["24.10"]
    assert branch["path_packages"] == "DEPRECATED"
    assert branch["branch_off_rev"] == 27990
    assert branch["versions"] == ["24.10.5", "24.10.4"]
    assert branch["package_changes"] == [
        {"source": "firewall", "target": "firewall4", "revision": 18611},
        {"source": "kmod-nft-nat6", "revision": 20282, "mandatory": True},
    ]
    snapshot = document["branches"]["SNAPSHOT"]
    assert "branch_off_rev" not in snapshot
    assert snapshot["package_changes"] == [] and snapshot["snapshot"] is True


def test_package_change_drops_nulls_and_false_mandatory() -> None:
    assert package_change_json({"source": "a", "target": None, "revision": 1, "mandatory": False}) == {
        "source": "a",
        "revision": 1,
    }


def test_version_paths_substitute_each_version() -> None:
    assert version_paths(BRANCHES.values()) == {
        "releases/24.10.5": "24.10.5",
        "releases/24.10.4": "24.10.4",
        "snapshots": "SNAPSHOT",
    }


def test_build_at_format() -> None:
    assert build_at(1738620600) == "2025-02-03T22:10:00.000000Z"


def test_profile_document_merges_top_level_and_profile() -> None:
    profile = ProfileEntry(
        id="tplink_archer-c7-v5",
        titles=({"vendor": "TP-Link", "model": "Archer C7", "variant": "v5"},),
        device_packages=("kmod-ath10k",),
        supported_devices=("tplink,archer-c7-v5",),
        image_prefix="openwrt-24.10.4-ath79-generic-tplink_archer-c7-v5",
        images=(ImageEntry("x-sysupgrade.bin", "sysupgrade", "a" * 64, "b" * 64, "squashfs"),),
    )
    top = {
        "target": "ath79/generic",
        "arch_packages": "mips_24kc",
        "version_code": "r28959-abc",
        "version_number": "24.10.4",
        "source_date_epoch": 1738620600,
        "profiles": {"ignored": {}},
    }
    document = profile_document(top, profile)
    assert "profiles" not in document
    assert document["metadata_version"] == 1
    assert document["id"] == "tplink_archer-c7-v5"
    assert document["build_at"] == "2025-02-03T22:10:00.000000Z"
    assert document["images"][0] == {
        "name": "x-sysupgrade.bin",
        "type": "sysupgrade",
        "sha256": "a" * 64,
        "sha256_unsigned": "b" * 64,
        "filesystem": "squashfs",
    }
    for key in ("arch_packages", "target", "version_code", "version_number", "titles", "supported_devices"):
        assert key in document
