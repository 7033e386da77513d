"""Upgrade checks against a catalog loaded from the demo upstream (23.05.5 … 25.12.1, SNAPSHOT)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted

from asud.errors import BadRequest, UnknownPackages
from asud.upgrades.check import UpgradeCheck, check_upgrade
from asud.upgrades.policy import UpgradePolicy

DEFAULT = UpgradePolicy()


async def installed(catalog: Any, version: str, names: list[str], target: str = "x86/64") -> dict[str, str]:
    """``{name: version}`` as a device running ``version`` reports them (ABI names as its index has them)."""
    index = (await catalog.package_index("openwrt", version, target)).versions(strip_abi=False)
    return {name: index[name] for name in names}


async def run(
    catalog: Any,
    version: str,
    packages: dict[str, str] | None,
    *,
    target: str = "x86/64",
    revision: str | None = None,
    policy: UpgradePolicy = DEFAULT,
) -> UpgradeCheck | None:
    return await check_upgrade(
        catalog,
        distro="openwrt",
        version=version,
        target=target,
        packages=packages,
        revision=revision,
        policy=policy,
    )


@pytest_twisted.ensureDeferred
async def test_point_release_upgrade_lists_only_newer_packages(demo_catalog: Any) -> None:
    packages = await installed(demo_catalog, "24.10.4", ["curl", "dnsmasq", "owut", "busybox"])
    packages["vim"] = "99.0-r1"  # installed newer than the release: never a downgrade
    check = await run(demo_catalog, "24.10.4", packages)
    assert check is not None
    assert check.version == "24.10.5"
    assert check.version_code.startswith("r29087-")
    assert check.upgrades == {
        "curl": ("8.14.1-r1", "8.12.1-r2"),
        "dnsmasq": ("2.91-r1", "2.90-r4"),
    }
    assert check.packages == ["busybox", "curl", "dnsmasq", "owut", "vim"]
    assert check.package_changes == []  # both releases of 24.10 share the branch's changes
    assert check.unavailable == {}


@pytest_twisted.ensureDeferred
async def test_next_branch_brings_auc_back_as_owut(demo_catalog: Any) -> None:
    packages = await installed(demo_catalog, "23.05.5", ["auc", "luci-app-opkg", "opkg", "curl", "vim"])
    check = await run(demo_catalog, "23.05.5", packages, policy=UpgradePolicy(next_branch_only=True))
    assert check is not None
    assert check.version == "24.10.5"
    assert "auc" not in check.packages and "owut" in check.packages
    assert "luci-app-package-manager" in check.packages
    # opkg → apk-mbedtls (r28056) came after 24.10 split off main (r27990): 24.10 keeps opkg
    assert "opkg" in check.packages and "apk-mbedtls" not in check.packages
    assert {(c.source, c.target) for c in check.package_changes} >= {("auc", "owut")}
    assert check.upgrades["curl"] == ("8.14.1-r1", "8.7.1-1")
    assert "auc" not in check.upgrades  # a renamed package has no comparable version


@pytest_twisted.ensureDeferred
async def test_default_policy_offers_the_newest_branch(demo_catalog: Any) -> None:
    packages = await installed(demo_catalog, "23.05.5", ["auc", "opkg", "vim", "libubox20230523"])
    check = await run(demo_catalog, "23.05.5", packages)
    assert check is not None
    assert check.version == "25.12.1"
    assert check.packages == ["apk-mbedtls", "libubox", "owut"]  # ABI names dropped, renames applied
    assert check.unavailable == {"vim": "not available in 25.12.1"}
    assert check.upgrades["libubox20230523"][0].startswith("2025.05.07")  # compared by apk rules


@pytest_twisted.ensureDeferred
async def test_unresolvable_packages_are_reported(demo_catalog: Any) -> None:
    packages = await installed(demo_catalog, "24.10.4", ["ip-full", "ip-tiny", "curl"])
    check = await run(demo_catalog, "24.10.4", packages)
    assert check is not None
    assert set(check.unavailable) == {"ip-tiny"}
    assert "conflicts" in check.unavailable["ip-tiny"]
    assert check.packages == ["curl", "ip-full"]


@pytest_twisted.ensureDeferred
async def test_latest_release_is_up_to_date(demo_catalog: Any) -> None:
    packages = await installed(demo_catalog, "25.12.1", ["curl", "owut"])
    assert await run(demo_catalog, "25.12.1", packages) is None
    assert await run(demo_catalog, "25.12.1", None) is None


@pytest_twisted.ensureDeferred
async def test_version_only_check(demo_catalog: Any) -> None:
    check = await run(demo_catalog, "24.10.5", None)
    assert check is not None
    assert (check.version, check.upgrades, check.packages) == ("25.12.1", {}, [])


@pytest_twisted.ensureDeferred
async def test_package_upgrades_without_a_new_version(demo_catalog: Any) -> None:
    check = await run(demo_catalog, "25.12.1", {"curl": "8.10.0-r1"})
    assert check is not None
    assert check.version is None
    assert check.upgrades == {"curl": ("8.15.0-r1", "8.10.0-r1")}


@pytest_twisted.ensureDeferred
async def test_snapshot_compares_revisions(demo_catalog: Any) -> None:
    check = await run(demo_catalog, "SNAPSHOT", None, revision="r32000-0123456789")
    assert check is not None and check.version == "SNAPSHOT"
    assert await run(demo_catalog, "SNAPSHOT", None, revision="r32870-8e1f6a0b47") is None
    assert await run(demo_catalog, "SNAPSHOT", None) is None  # no revision: nothing says it is older


@pytest_twisted.ensureDeferred
async def test_unknown_packages_of_the_installed_version(demo_catalog: Any) -> None:
    with pytest.raises(UnknownPackages) as raised:
        await run(demo_catalog, "24.10.4",
                  {"curl": "8.12.1-r2", "no-such-pkg": "1", "owut2": "1", "kernel": "6.6"})
    assert raised.value.names == ["no-such-pkg", "owut2"]
    assert "owut" in raised.value.suggestions["owut2"]
    # kernel, libc and base-files are never unknown; owut does not exist in 23.05
    with pytest.raises(UnknownPackages):
        await run(demo_catalog, "23.05.5", {"owut": "1"})
    base_files = await installed(demo_catalog, "25.12.1", ["base-files"])
    assert await run(demo_catalog, "25.12.1", {"kernel": "1", "libc": "1", **base_files}) is None


@pytest_twisted.ensureDeferred
async def test_unknown_version_or_target(demo_catalog: Any) -> None:
    with pytest.raises(BadRequest, match="version"):
        await run(demo_catalog, "19.07.10", None)
    with pytest.raises(BadRequest, match="target"):
        await run(demo_catalog, "24.10.4", None, target="ramips/mt7621")


@pytest_twisted.ensureDeferred
async def test_answer_survives_storage_form(demo_catalog: Any) -> None:
    check = await run(demo_catalog, "23.05.5", await installed(demo_catalog, "23.05.5", ["auc", "vim"]))
    assert check is not None
    assert UpgradeCheck.from_json(check.to_json()) == check
