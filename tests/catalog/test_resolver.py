"""The resolver on hand-made indexes: package list rules, opkg closure, errors with exact reasons."""

from __future__ import annotations

import pytest

from asud.catalog.resolver import SUGGESTED_NAMES, PackageIndex, build_package_list, check_names, resolve
from asud.errors import PackageConflict, UnknownPackages
from asud.upstream.records import Dependency, PackageRecord


def pkg(
    name: str,
    version: str = "1.0-r1",
    *,
    depends: str = "",
    provides: str = "",
    conflicts: str = "",
    abi: str | None = None,
) -> PackageRecord:
    """A record from opkg-like field text: ``depends="libc, a | b (>= 2)"``."""
    groups = []
    for group in filter(None, (part.strip() for part in depends.split(","))):
        alternatives = []
        for alt in (part.strip() for part in group.split("|")):
            if "(" in alt:
                dep_name, relation = alt.split("(", 1)
                op, wanted = relation.rstrip(")").split()
                alternatives.append(Dependency(dep_name.strip(), op, wanted))
            else:
                alternatives.append(Dependency(alt))
        groups.append(tuple(alternatives))
    return PackageRecord(
        name=name,
        version=version,
        depends=tuple(groups),
        provides=tuple(p.strip() for p in provides.split(",") if p.strip()),
        conflicts=tuple(c.strip() for c in conflicts.split(",") if c.strip()),
        abi_version=abi,
    )


BASE = [
    pkg("kernel", "6.6.73~abc-r1"),
    pkg("libc", "1.2.5-r4"),
    pkg("base-files", "1647-r28000", depends="libc"),
    pkg("busybox", "1.36.1-r2", depends="libc"),
    pkg("libubox20240329", "2024.03.29~eb9bcb64-r1", depends="libc", provides="libubox", abi="20240329"),
    pkg("ubus", "2025.01.02-r1", depends="libc, libubox20240329"),
    pkg("dropbear", "2024.86-r1", depends="libc"),
]


def test_package_list_applies_removals_twice_and_puts_user_packages_first() -> None:
    names = build_package_list(
        ["busybox", "dropbear", "-ppp"], ["ppp", "kmod-x"], ["luci", "-dropbear", "busybox"]
    )
    assert names == ["luci", "busybox", "kernel", "kmod-x"]


def test_closure_follows_abi_names_and_strips_them_in_the_manifest() -> None:
    index = PackageIndex(BASE)
    result = resolve(
        index, default_packages=["base-files", "busybox"], profile_packages=[], requested=["ubus"]
    )
    assert result.manifest == {
        "base-files": "1647-r28000",
        "busybox": "1.36.1-r2",
        "kernel": "6.6.73~abc-r1",
        "libc": "1.2.5-r4",
        "libubox": "2024.03.29~eb9bcb64-r1",
        "ubus": "2025.01.02-r1",
    }
    assert result.top_level == ["ubus", "base-files", "busybox", "kernel"]
    assert resolve(
        index, default_packages=[], profile_packages=[], requested=["ubus"], strip_abi=False
    ).manifest["libubox20240329"]


def test_abi_free_request_finds_the_abi_versioned_package() -> None:
    result = resolve(PackageIndex(BASE), default_packages=[], profile_packages=[], requested=["libubox"])
    assert "libubox" in result.manifest


def test_removal_drops_a_default_but_a_dependency_brings_it_back() -> None:
    records = [*BASE, pkg("needs-dropbear", depends="dropbear")]
    index = PackageIndex(records)
    without = resolve(index, default_packages=["dropbear"], profile_packages=[], requested=["-dropbear"])
    assert "dropbear" not in without.manifest
    back = resolve(
        index, default_packages=["dropbear"], profile_packages=[], requested=["-dropbear", "needs-dropbear"]
    )
    assert "dropbear" in back.manifest


def test_first_satisfiable_alternative_wins() -> None:
    records = [*BASE, pkg("ssl-a", "1.0"), pkg("ssl-b", "2.0"), pkg("app", depends="ssl-a (>= 2) | ssl-b")]
    result = resolve(PackageIndex(records), default_packages=[], profile_packages=[], requested=["app"])
    assert "ssl-b" in result.manifest and "ssl-a" not in result.manifest


def test_an_already_installed_alternative_is_preferred() -> None:
    records = [*BASE, pkg("ssl-a"), pkg("ssl-b"), pkg("app", depends="ssl-a | ssl-b")]
    result = resolve(
        PackageIndex(records), default_packages=[], profile_packages=[], requested=["ssl-b", "app"]
    )
    assert "ssl-a" not in result.manifest


def test_provides_prefers_installed_then_real_package_then_first_provider() -> None:
    records = [
        *BASE,
        pkg("wpad-basic", provides="hostapd, wpad"),
        pkg("wpad-full", provides="hostapd, wpad"),
        pkg("hostapd-client", depends="hostapd"),
        pkg("needs-wpad", depends="wpad"),
        pkg("wpad", "9.9"),
    ]
    index = PackageIndex(records)
    first = resolve(index, default_packages=[], profile_packages=[], requested=["hostapd-client"])
    assert "wpad-basic" in first.manifest and "wpad-full" not in first.manifest
    installed = resolve(
        index, default_packages=[], profile_packages=[], requested=["wpad-full", "hostapd-client"]
    )
    assert "wpad-basic" not in installed.manifest
    real = resolve(index, default_packages=[], profile_packages=[], requested=["needs-wpad"])
    assert real.manifest["wpad"] == "9.9"
    assert "wpad-basic" not in real.manifest


def test_a_top_level_virtual_name_installs_a_provider() -> None:
    records = [*BASE, pkg("wpad-basic-mbedtls", provides="wpad-basic")]
    result = resolve(
        PackageIndex(records), default_packages=[], profile_packages=[], requested=["wpad-basic"]
    )
    assert "wpad-basic-mbedtls" in result.manifest
    assert result.provided_by == {"wpad-basic": "wpad-basic-mbedtls"}


def test_highest_version_of_a_name_is_chosen() -> None:
    records = [*BASE, pkg("tool", "1.9-r1"), pkg("tool", "1.10-r1")]
    result = resolve(PackageIndex(records), default_packages=[], profile_packages=[], requested=["tool"])
    assert result.manifest["tool"] == "1.10-r1"


def test_unknown_packages_carry_suggestions() -> None:
    index = PackageIndex([*BASE, pkg("luci-app-firewall")])
    with pytest.raises(UnknownPackages) as caught:
        resolve(
            index, default_packages=[], profile_packages=[], requested=["luci-app-firewal", "nonexistent-x"]
        )
    assert caught.value.names == ["luci-app-firewal", "nonexistent-x"]
    assert caught.value.suggestions["luci-app-firewal"] == ["luci-app-firewall"]
    assert "did you mean luci-app-firewall" in caught.value.detail


def test_only_the_first_unknown_names_get_suggestions() -> None:
    """Each suggestion is a search of every known name: a request of many made-up names lists them all, but
    searches for the first few only."""
    index = PackageIndex([*BASE, pkg("luci-app-firewall")])
    typos = [f"luci-app-firewal{letter}" for letter in "abcdefgh"]
    with pytest.raises(UnknownPackages) as caught:
        resolve(index, default_packages=[], profile_packages=[], requested=typos)
    assert caught.value.names == typos
    assert list(caught.value.suggestions) == typos[:SUGGESTED_NAMES]
    assert caught.value.detail.endswith(", ".join(typos[SUGGESTED_NAMES:]))
    assert caught.value.detail.count("did you mean luci-app-firewall?") == SUGGESTED_NAMES


def test_conflict_is_reported_with_both_names() -> None:
    records = [*BASE, pkg("dnsmasq"), pkg("dnsmasq-full", conflicts="dnsmasq")]
    with pytest.raises(PackageConflict, match="dnsmasq-full conflicts with dnsmasq"):
        resolve(
            PackageIndex(records),
            default_packages=["dnsmasq"],
            profile_packages=[],
            requested=["dnsmasq-full"],
        )
    ok = resolve(
        PackageIndex(records),
        default_packages=["dnsmasq"],
        profile_packages=[],
        requested=["dnsmasq-full", "-dnsmasq"],
    )
    assert "dnsmasq" not in ok.manifest


def test_unsatisfiable_version_names_what_is_available() -> None:
    records = [*BASE, pkg("liby", "1.0"), pkg("x", depends="liby (>= 2)")]
    with pytest.raises(PackageConflict, match=r"x depends on liby \(>= 2\) but only 1.0 is available"):
        resolve(PackageIndex(records), default_packages=[], profile_packages=[], requested=["x"])


def test_missing_dependency_is_a_conflict() -> None:
    records = [*BASE, pkg("x", depends="ghost")]
    with pytest.raises(PackageConflict, match="x depends on ghost, which no package index provides"):
        resolve(PackageIndex(records), default_packages=[], profile_packages=[], requested=["x"])


def test_dependency_cycles_terminate() -> None:
    records = [*BASE, pkg("a", depends="b"), pkg("b", depends="a")]
    result = resolve(PackageIndex(records), default_packages=[], profile_packages=[], requested=["a"])
    assert {"a", "b"} <= set(result.manifest)


def test_unknown_version_satisfies_relations() -> None:
    records = [
        pkg("kernel", ""),
        pkg("libc", ""),
        pkg("kmod-x", "6.6-r1", depends="kernel (= 6.6.73~abc-r1)"),
    ]
    result = resolve(PackageIndex(records), default_packages=[], profile_packages=[], requested=["kmod-x"])
    assert "kmod-x" in result.manifest


def test_apk_index_checks_names_only() -> None:
    index = PackageIndex([pkg("kernel"), pkg("libc"), pkg("luci", "25.1-r1"), pkg("base-files")], "apk")
    result = resolve(index, default_packages=["base-files"], profile_packages=[], requested=["luci=25.1-r1"])
    assert not result.complete
    assert result.manifest == {"base-files": "1.0-r1", "kernel": "1.0-r1", "luci": "25.1-r1"}
    with pytest.raises(UnknownPackages) as caught:
        check_names(index, ["luci", "-gone-too", "lucy"])
    assert caught.value.names == ["lucy"]
