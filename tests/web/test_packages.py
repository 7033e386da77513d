"""Package suggestions for the "add a package" field, from a real ``PackageIndex``."""

from __future__ import annotations

from asud.catalog.resolver import PackageIndex
from asud.http.web_packages import suggest_packages
from asud.upstream.records import PackageRecord

INDEX = PackageIndex(
    [
        PackageRecord("luci", "25.1", description="LuCI interface\nwith more lines"),
        PackageRecord("luci-app-adblock", "25.1", description="LuCI support for adblock"),
        PackageRecord("luci-app-firewall", "25.1"),
        PackageRecord("adblock", "4.3"),
        PackageRecord("libubox20240329", "2024.03.29", abi_version="20240329", provides=("libubox",)),
        PackageRecord("wpad-basic-mbedtls", "2024.09", provides=("hostapd", "wpad")),
    ]
)


def names(query: str, limit: int = 12) -> list[str]:
    return [suggestion.name for suggestion in suggest_packages(INDEX, query, limit)]


def test_prefix_matches_come_first_shortest_first() -> None:
    assert names("luci") == ["luci", "luci-app-adblock", "luci-app-firewall"]
    assert names("adb") == ["adblock", "luci-app-adblock"]


def test_abi_free_and_provided_names_are_offered() -> None:
    assert "libubox" in names("libub") and "libubox20240329" not in names("libub")
    [hostapd] = suggest_packages(INDEX, "hostapd")
    assert hostapd.provided_by == "wpad-basic-mbedtls"
    assert hostapd.to_json()["provided_by"] == "wpad-basic-mbedtls"


def test_close_spellings_and_details() -> None:
    assert names("luci-app-adblok") == ["luci-app-adblock"]
    [luci] = [s for s in suggest_packages(INDEX, "luci") if s.name == "luci"]
    assert luci.version == "25.1" and luci.description == "LuCI interface"


def test_removal_prefix_empty_query_and_limit() -> None:
    assert names("-luci-app-f") == ["luci-app-firewall"]
    assert names("   ") == []
    assert len(names("l", limit=2)) == 2
