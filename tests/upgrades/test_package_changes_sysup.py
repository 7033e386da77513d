"""Carrying a package list across releases with the package-changes table."""

from __future__ import annotations

from sysup.catalog.package_changes import DEFAULT_PACKAGE_CHANGES
from sysup.config import PackageChange
from sysup.upgrades.package_changes import applicable_changes, apply_package_changes


def test_rename_inside_the_revision_window() -> None:
    packages = ["base-files", "auc", "luci"]
    after = apply_package_changes(packages, DEFAULT_PACKAGE_CHANGES, 24106, 27990)
    assert after == ["base-files", "owut", "luci"]
    assert packages == ["base-files", "auc", "luci"]  # the input is left alone


def test_changes_outside_the_window_are_ignored() -> None:
    # firewall → firewall4 (r18611) is older than the installed revision; opkg → apk-mbedtls (r28056) newer
    # than the target.
    packages = ["firewall", "opkg", "auc"]
    after = apply_package_changes(packages, DEFAULT_PACKAGE_CHANGES, 23069, 27990)
    assert after == ["firewall", "opkg", "owut"]
    # the window is (from, to]: a change at exactly ``from`` is already installed, one at ``to`` is included
    assert apply_package_changes(["auc"], DEFAULT_PACKAGE_CHANGES, 26792, 30000) == ["auc"]
    assert apply_package_changes(["auc"], DEFAULT_PACKAGE_CHANGES, 26000, 26792) == ["owut"]


def test_source_without_target_removes() -> None:
    packages = ["luci-app-diag-core", "kmod-nft-nat6", "dnsmasq"]
    assert apply_package_changes(packages, DEFAULT_PACKAGE_CHANGES, 20000, 27990) == ["dnsmasq"]


def test_target_without_source_adds_once() -> None:
    changes = [PackageChange(target="apk-mbedtls", revision=28056)]
    assert apply_package_changes(["base-files"], changes, 28000, 29000) == ["base-files", "apk-mbedtls"]
    assert apply_package_changes(["apk-mbedtls"], changes, 28000, 29000) == ["apk-mbedtls"]


def test_rename_onto_an_installed_name_does_not_duplicate() -> None:
    assert apply_package_changes(["auc", "owut"], DEFAULT_PACKAGE_CHANGES, 26000, 27000) == ["owut"]


def test_open_bounds_and_order() -> None:
    selected = applicable_changes(reversed(DEFAULT_PACKAGE_CHANGES), None, None)
    assert [change.revision for change in selected] == sorted(c.revision for c in DEFAULT_PACKAGE_CHANGES)
    assert apply_package_changes(["firewall", "opkg"], DEFAULT_PACKAGE_CHANGES, None, None) == [
        "firewall4",
        "apk-mbedtls",
    ]
