"""Repository lists of an ImageBuilder: read, rewrite, write back."""

from __future__ import annotations

from asud.upstream.repositories import (
    format_apk_repositories,
    format_repositories,
    parse_apk_repositories,
    parse_repositories,
    parse_repositories_conf,
    rewrite_urls,
)

OPKG = """\
## Remote package repositories
src/gz openwrt_core https://downloads.openwrt.org/releases/24.10.2/targets/x86/64/packages
src/gz openwrt_base https://downloads.openwrt.org/releases/24.10.2/packages/x86_64/base
# src/gz openwrt_telephony https://downloads.openwrt.org/releases/24.10.2/packages/x86_64/telephony

## This is the local package repository, do not remove!
src imagebuilder file:packages

option check_signature
"""

APK = """\
# generated
set -default arch=x86_64
https://downloads.openwrt.org/releases/25.12.1/targets/x86/64/packages/packages.adb
https://downloads.openwrt.org/releases/25.12.1/packages/x86_64/base/packages.adb
#https://downloads.openwrt.org/releases/25.12.1/packages/x86_64/video/packages.adb
v3 @local /build/packages/packages.adb
"""


def _to_cache(url: str) -> str:
    return url.replace("https://downloads.openwrt.org", "file:///var/cache/sysup")


def test_opkg_round_trip_and_rewrite() -> None:
    entries = parse_repositories_conf(OPKG)
    assert format_repositories(entries, "opkg") == OPKG
    feeds = [(e.name, e.type, e.enabled, e.is_local) for e in entries if e.kind == "repository"]
    assert feeds == [
        ("openwrt_core", "src/gz", True, False),
        ("openwrt_base", "src/gz", True, False),
        ("openwrt_telephony", "src/gz", False, False),
        ("imagebuilder", "src", True, True),
    ]
    assert [e.name for e in entries if e.kind == "option"] == ["check_signature"]
    rewritten = format_repositories(rewrite_urls(entries, _to_cache), "opkg")
    core = "src/gz openwrt_core file:///var/cache/sysup/releases/24.10.2/targets/x86/64/packages\n"
    assert core in rewritten
    assert "# src/gz openwrt_telephony file:///var/cache/sysup/releases/24.10.2/" in rewritten
    assert "https://" not in rewritten
    assert rewritten.count("\n") == OPKG.count("\n")
    assert "## This is the local package repository, do not remove!\n" in rewritten


def test_apk_round_trip_and_rewrite() -> None:
    entries = parse_apk_repositories(APK)
    assert format_repositories(entries, "apk") == APK
    repos = [e for e in entries if e.kind == "repository"]
    assert [(e.enabled, e.type, e.tag) for e in repos] == [(True, "", ""), (True, "", ""), (False, "", ""),
                                                            (True, "v3", "local")]
    assert [e.kind for e in entries][:2] == ["comment", "set"]
    out = format_apk_repositories(rewrite_urls(entries, _to_cache))
    assert out.splitlines()[2] == "file:///var/cache/sysup/releases/25.12.1/targets/x86/64/packages/packages.adb"
    assert out.splitlines()[4] == "# file:///var/cache/sysup/releases/25.12.1/packages/x86_64/video/packages.adb"
    assert out.splitlines()[5] == "v3 @local /build/packages/packages.adb"


def test_dispatch_by_manager() -> None:
    assert parse_repositories(APK, "apk") == parse_apk_repositories(APK)
    assert parse_repositories(OPKG, "opkg") == parse_repositories_conf(OPKG)
    assert parse_repositories_conf("") == []
