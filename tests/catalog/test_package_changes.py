"""The package-change table and branch offsets: defaults, per-distro overrides, per-branch filtering."""

from __future__ import annotations

from asud.catalog.package_changes import (
    DEFAULT_PACKAGE_CHANGES,
    branch_off_rev_for,
    changes_for_branch,
    package_changes_for,
)
from asud.config import DistroSettings, PackageChange


def test_defaults_are_the_openwrt_table() -> None:
    table = {(c.source, c.target): c for c in package_changes_for(DistroSettings())}
    assert table[("firewall", "firewall4")].revision == 18611
    assert table[("kmod-nft-nat6", None)].mandatory
    assert table[("auc", "owut")].revision == 26792
    assert table[("opkg", "apk-mbedtls")].revision == 28056
    assert table[("wpad-basic-wolfssl", "wpad-basic-mbedtls")].revision == 21994
    assert [c.revision for c in DEFAULT_PACKAGE_CHANGES] == sorted(
        c.revision for c in DEFAULT_PACKAGE_CHANGES
    )


def test_branch_offsets_default_and_override() -> None:
    assert branch_off_rev_for(DistroSettings(), "24.10") == 27990
    assert branch_off_rev_for(DistroSettings(), "23.05") == 23069
    assert branch_off_rev_for(DistroSettings(branch_off_rev={"24.10": 5}), "24.10") == 5
    assert branch_off_rev_for(DistroSettings(), "99.01") is None


def test_release_branches_only_show_changes_made_before_they_split() -> None:
    before = [
        c.source for c in changes_for_branch(DEFAULT_PACKAGE_CHANGES, snapshot=False, branch_off_rev=23069)
    ]
    assert "firewall" in before and "auc" not in before and "opkg" not in before
    assert changes_for_branch(DEFAULT_PACKAGE_CHANGES, snapshot=True, branch_off_rev=1) == list(
        DEFAULT_PACKAGE_CHANGES
    )
    own = [PackageChange(source="a", revision=1)]
    assert package_changes_for(DistroSettings(package_changes=own)) == tuple(own)
