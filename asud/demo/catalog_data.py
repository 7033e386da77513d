"""The package universe of the demo tree: names, versions per release, relations and feeds.

Dependencies are written once in a neutral form and rendered per era by ``package_set``:

* ``"libubox"`` — resolved to the ABI-versioned name (``libubox20240329``) where that library has one;
* ``"ucode>=2024.07.11"`` — a versioned dependency (``<``, ``<=``, ``=``, ``>=``, ``>``);
* ``"libcurl=@"`` — exactly the version that package has in the same release; ``"kernel=@"`` the kernel;
* ``"a|b"`` — alternatives (opkg only; apk has none, the first alternative is kept).

Versions map a key to ``(upstream version, PKG_RELEASE or None)``; the key is an exact release version,
a branch (the value carries on into later branches), or ``"*"`` (see ``lookup``). ABI versions likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["KMODS", "PACKAGES", "PackageDef", "Versions", "lookup"]

Versions = dict[str, tuple[str, int | None]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PackageDef:
    name: str
    #: ``core`` (targets/…/packages), ``base``, ``packages`` or ``luci`` (packages/<arch>/<feed>).
    feed: str
    versions: Versions
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    #: ABI version by key (same lookup as versions); a missing key means no ABI suffix there.
    abi: dict[str, str] = field(default_factory=dict)
    section: str = "base"
    description: str = ""
    #: Extra incompressible bytes in the package (to make flash limits bite).
    payload: int = 0
    #: ``Architecture: all`` (``noarch`` in apk).
    arch_all: bool = False
    #: Branches (``"23.05"``, ``"24.10"``, ``"25.12"``, ``"SNAPSHOT"``) carrying the package; empty: all.
    branches: frozenset[str] = frozenset()
    #: Targets carrying it (core feed only); empty: all.
    targets: frozenset[str] = frozenset()


#: Branches newest first: a value set for a branch carries on into later branches unless they set their own.
BRANCH_ORDER = ("SNAPSHOT", "25.12", "24.10", "23.05")


def lookup(table: Mapping[str, T], version: str, branch: str) -> T | None:
    """The entry for the exact version, else this branch or the nearest earlier one, else ``"*"``."""
    earlier = BRANCH_ORDER[BRANCH_ORDER.index(branch) :] if branch in BRANCH_ORDER else (branch,)
    for key in (version, *earlier, "*"):
        if key in table:
            return table[key]
    return None


OPKG = frozenset({"23.05", "24.10"})
APK = frozenset({"25.12", "SNAPSHOT"})
ONLY_2305 = frozenset({"23.05"})
FROM_2410 = frozenset({"24.10", "25.12", "SNAPSHOT"})
BEFORE_2512 = frozenset({"23.05", "24.10"})


def v(default: str, release: int | None = 1, **by_branch: str | tuple[str, int | None]) -> Versions:
    """Versions: ``default`` everywhere unless a branch/version (``b24_10``, ``v24_10_5``) says otherwise."""
    table: Versions = {"*": (default, release)}
    for key, value in by_branch.items():
        name = key[1:].replace("_", ".")
        table[name] = value if isinstance(value, tuple) else (value, release)
    return table


def p(name: str, feed: str, versions: Versions, deps: str = "libc", **extra: object) -> PackageDef:
    """A package; ``deps``, ``provides`` and ``conflicts`` are space-separated."""
    for key in ("provides", "conflicts"):
        if isinstance(extra.get(key), str):
            extra[key] = tuple(str(extra[key]).split())
    if isinstance(extra.get("abi"), str):
        extra["abi"] = {"*": extra["abi"]}
    return PackageDef(name, feed, versions, tuple(deps.split()), **extra)  # type: ignore[arg-type]


_GIT_UBOX = v(
    "2023-11-28-4a3fa5c4",
    b24_10=("2024.03.29~eb9bcb64", 1),
    b25_12=("2025.05.07~b14c4688", 1),
    bSNAPSHOT=("2025.10.02~a18ee3e3", 1),
)
_UBOX_ABI = {"*": "20230523", "24.10": "20240329", "25.12": "20250507"}
_UCODE = v(
    "2023-11-07-a6e75e02",
    b24_10=("2025.02.10~a8a11aea", 1),
    b25_12=("2025.09.29~70ff4ae0", 1),
    bSNAPSHOT=("2025.12.01~3f64c8a9", 1),
)
_LUCI = v(
    "git-24.264.56413-b8c7a2a",
    1,
    b24_10=("25.210.62431~e7f6f1e", None),
    v24_10_5=("25.300.71234~a91f3c0", None),
    b25_12=("26.020.41234~90ab3c1", None),
    bSNAPSHOT=("26.110.51234~c0ffee1", None),
)


def _luci(name: str, deps: str = "libc luci-base", **extra: object) -> PackageDef:
    return p(name, "luci", _LUCI, deps, section="luci", arch_all=True, **extra)


PACKAGES: tuple[PackageDef, ...] = (
    # -- core: target packages (kernel and libc live only in the IB's packages/, as upstream) --------
    p(
        "base-files",
        "core",
        v(
            "1565-r24106-10cc5fcd00",
            None,
            b24_10=("1647~29397011cc", 1),
            v24_10_5=("1648~d9c5716d1d", 1),
            b25_12=("1677~4b3c52d1e9", 1),
            bSNAPSHOT=("1702~8e1f6a0b47", 1),
        ),
        "libc netifd jsonfilter usign openwrt-keyring fstools fwtool",
        description="Base filesystem for OpenWrt",
    ),
    p(
        "libgcc",
        "core",
        v("12.3.0", 4, b24_10=("13.3.0", 4), b25_12=("14.3.0", 1), bSNAPSHOT=("14.3.0", 1)),
        "libc",
        section="libs",
        description="GCC support library",
    ),
    p(
        "libpthread",
        "core",
        v("1.2.4", 101),
        "libgcc",
        section="libs",
        branches=OPKG,
        description="POSIX thread library (empty since musl)",
    ),
    p(
        "grub2",
        "core",
        v("2.06", 5, b24_10=("2.12", 2), b25_12=("2.12", 3)),
        "libc",
        section="boot",
        targets=frozenset({"x86/64"}),
        description="GRand Unified Bootloader",
    ),
    p(
        "grub2-bios-setup",
        "core",
        v("2.06", 5, b24_10=("2.12", 2), b25_12=("2.12", 3)),
        "libc grub2",
        section="boot",
        targets=frozenset({"x86/64"}),
        description="GRUB2 BIOS boot sector setup",
    ),
    # -- base feed ---------------------------------------------------------------------------------
    p(
        "busybox",
        "base",
        v("1.36.1", 1, b24_10=("1.36.1", 2), b25_12=("1.37.0", 1)),
        "libc",
        description="Core utilities for embedded Linux",
    ),
    p(
        "ca-bundle",
        "base",
        v("20230311", 1, b24_10=("20240203", 1), b25_12=("20250419", 1)),
        "",
        arch_all=True,
        description="System CA certificates as a bundle",
    ),
    p(
        "ca-certificates",
        "base",
        v("20230311", 1, b24_10=("20240203", 1), b25_12=("20250419", 1)),
        "",
        arch_all=True,
        description="System CA certificates",
    ),
    p(
        "dropbear",
        "base",
        v("2022.82", 6, b24_10=("2024.86", 1), b25_12=("2025.88", 1)),
        "libc",
        description="Small SSH2 client/server",
    ),
    p(
        "fstools",
        "base",
        _GIT_UBOX,
        "libc ubox libubox libuci libblobmsg-json libjson-c",
        description="OpenWrt filesystem tools",
    ),
    p(
        "fwtool",
        "base",
        v("2019-11-12-8f7fe925", 1, b24_10=("2019.11.12~8f7fe925", 1)),
        "libc",
        description="Firmware upgrade metadata tool",
    ),
    p(
        "ubox",
        "base",
        _GIT_UBOX,
        "libc libubox ubusd ubus libubus libuci",
        description="OpenWrt system helper",
    ),
    p("ubus", "base", _GIT_UBOX, "libc libubus libblobmsg-json ubusd", description="OpenWrt RPC client"),
    p("ubusd", "base", _GIT_UBOX, "libc libubox libblobmsg-json", description="OpenWrt RPC daemon"),
    p(
        "libubus",
        "base",
        _GIT_UBOX,
        "libc libubox",
        abi={"*": "20230605", "24.10": "20231128", "25.12": "20250102"},
        section="libs",
        description="OpenWrt RPC client library",
    ),
    p(
        "libubox",
        "base",
        _GIT_UBOX,
        "libc",
        abi=_UBOX_ABI,
        section="libs",
        description="Basic utility library",
    ),
    p(
        "libblobmsg-json",
        "base",
        _GIT_UBOX,
        "libc libjson-c libubox",
        abi=_UBOX_ABI,
        section="libs",
        description="blobmsg <-> json conversion library",
    ),
    p(
        "libjson-script",
        "base",
        _GIT_UBOX,
        "libc libubox",
        abi=_UBOX_ABI,
        section="libs",
        description="Minimalistic JSON based scripting engine",
    ),
    p("jshn", "base", _GIT_UBOX, "libc libjson-c libubox libblobmsg-json", description="JSON SHell Notation"),
    p(
        "libjson-c",
        "base",
        v("0.16", 3, b24_10=("0.18", 1)),
        "libc",
        abi="5",
        section="libs",
        description="A JSON implementation in C",
    ),
    p(
        "jsonfilter",
        "base",
        v("2024-01-23-594cfa86", 1, b24_10=("2025.04.18~fa33fd48", 1)),
        "libc libubox libjson-c",
        description="OpenWrt JSON filter utility",
    ),
    p(
        "libuci",
        "base",
        v("2023-08-10-5781664d", 1, b24_10=("2025.01.20~16ff0bad", 1)),
        "libc libubox",
        abi="20130104",
        section="libs",
        description="Unified Configuration Interface library",
    ),
    p(
        "uci",
        "base",
        v("2023-08-10-5781664d", 1, b24_10=("2025.01.20~16ff0bad", 1)),
        "libc libuci",
        description="Unified Configuration Interface utility",
    ),
    p(
        "usign",
        "base",
        v("2020-05-23-f1f65026", 1, b24_10=("2025.05.08~f1f65026", 1)),
        "libc libubox",
        description="OpenWrt signature verification utility",
    ),
    p(
        "openwrt-keyring",
        "base",
        v("2022-03-25-62471e69", 2, b24_10=("2024.11.01~fbae29d7", 1)),
        "",
        arch_all=True,
        description="OpenWrt release build keyring",
    ),
    p("logd", "base", _GIT_UBOX, "libc libubox libubus libblobmsg-json", description="OpenWrt system log"),
    p("mtd", "base", v("26", None), "libc", description="Update utility for trx firmware images"),
    p(
        "netifd",
        "base",
        v("2024-01-04-c18cc79d", 2, b24_10=("2025.06.02~c20b3e5c", 1)),
        "libc libuci libnl-tiny libubus ubus jshn libubox",
        description="OpenWrt Network Interface daemon",
    ),
    p(
        "libnl-tiny",
        "base",
        v("2023-12-05-965c4bf4", 1, b24_10=("2025.03.19~c0df580a", 1)),
        "libc",
        abi="1",
        section="libs",
        description="Small version of libnl",
    ),
    p(
        "opkg",
        "base",
        v("2022-02-24-d038e5b6", 2, b24_10=("2024.10.16~38eccbb1", 1)),
        "libc uclient-fetch",
        branches=OPKG,
        description="Lightweight package management system",
    ),
    p(
        "apk-mbedtls",
        "base",
        v("3.0.0_pre20250610", 1, bSNAPSHOT=("3.0.1", 2)),
        "libc libmbedtls zlib",
        provides="apk",
        conflicts="apk-openssl",
        branches=APK,
        description="apk-tools package manager (mbedtls)",
    ),
    p(
        "apk-openssl",
        "base",
        v("3.0.0_pre20250610", 1, bSNAPSHOT=("3.0.1", 2)),
        "libc libopenssl zlib",
        provides="apk",
        conflicts="apk-mbedtls",
        branches=APK,
        description="apk-tools package manager (openssl)",
    ),
    p(
        "uclient-fetch",
        "base",
        v("2023-04-13-007d9454", 1, b24_10=("2024.10.22~88ae8f20", 1)),
        "libc libuclient",
        description="Tiny wget replacement using libuclient",
    ),
    p(
        "libuclient",
        "base",
        v("2023-04-13-007d9454", 1, b24_10=("2024.10.22~88ae8f20", 1)),
        "libc libubox",
        abi="20201210",
        section="libs",
        description="HTTP/1.1 client library",
    ),
    p("urandom-seed", "base", v("3", None), "libc", description="/etc/urandom.seed handling"),
    p(
        "urngd",
        "base",
        v("2023-11-01-44365eb1", 1, b24_10=("2023.11.01~44365eb1", 1)),
        "libc libubox",
        description="Non-physical true random number generator",
    ),
    p(
        "procd",
        "base",
        v("2024-03-30-7e6c6efd", 1, b24_10=("2025.06.18~3dba0b22", 1)),
        "libc ubusd ubus libjson-script ubox libubox libubus libblobmsg-json libjson-c jshn",
        description="OpenWrt system process manager",
    ),
    p(
        "procd-ujail",
        "base",
        v("2024-03-30-7e6c6efd", 1, b24_10=("2025.06.18~3dba0b22", 1)),
        "libc libubox libubus libblobmsg-json libjson-c",
        description="OpenWrt process jail helper",
    ),
    p(
        "procd-seccomp",
        "base",
        v("2024-03-30-7e6c6efd", 1, b24_10=("2025.06.18~3dba0b22", 1)),
        "libc libubox libblobmsg-json",
        description="OpenWrt process seccomp helper",
    ),
    p(
        "dnsmasq",
        "base",
        v("2.90", 2, b24_10=("2.90", 4), v24_10_5=("2.91", 1), b25_12=("2.91", 2)),
        "libc libubus",
        conflicts="dnsmasq-full",
        description="DNS and DHCP server",
    ),
    p(
        "dnsmasq-full",
        "base",
        v("2.90", 2, b24_10=("2.90", 4), v24_10_5=("2.91", 1), b25_12=("2.91", 2)),
        "libc libubus libnettle kmod-nft-core",
        provides="dnsmasq",
        conflicts="dnsmasq",
        description="DNS and DHCP server (with DNSSEC, DHCPv6, nftset)",
    ),
    p(
        "libnettle",
        "base",
        v("3.9.1", 1, b24_10=("3.10.1", 1)),
        "libc",
        abi="8",
        section="libs",
        description="GNU crypto library",
    ),
    p(
        "firewall4",
        "base",
        v("2023-09-01-598d9fbb", 1, b24_10=("2025.05.08~5e5e3e96", 1)),
        "libc ucode ucode-mod-fs ucode-mod-ubus ucode-mod-uci kmod-nft-core kmod-nft-nat kmod-nft-offload "
        "nftables-json",
        provides="uci-firewall",
        conflicts="firewall",
        description="nftables-based firewall",
    ),
    p(
        "firewall",
        "base",
        v("2022-02-17-4cd7d4f3", 3),
        "libc libubox libubus libuci libjson-c",
        provides="uci-firewall",
        conflicts="firewall4",
        branches=ONLY_2305,
        description="iptables-based OpenWrt firewall (fw3)",
    ),
    p(
        "nftables-json",
        "base",
        v("1.0.8", 1, b24_10=("1.1.1", 1), b25_12=("1.1.3", 1)),
        "libc libnftnl libjansson",
        provides="nftables",
        conflicts="nftables-nojson",
        description="nftables userspace utility (with JSON)",
    ),
    p(
        "nftables-nojson",
        "base",
        v("1.0.8", 1, b24_10=("1.1.1", 1), b25_12=("1.1.3", 1)),
        "libc libnftnl",
        provides="nftables",
        conflicts="nftables-json",
        description="nftables userspace utility (no JSON)",
    ),
    p(
        "libnftnl",
        "base",
        v("1.2.6", 1, b24_10=("1.2.8", 1)),
        "libc libmnl",
        abi="11",
        section="libs",
        description="Low-level netlink library for nf_tables",
    ),
    p(
        "libmnl",
        "base",
        v("1.0.5", 1),
        "libc",
        abi="0",
        section="libs",
        description="Minimalistic netlink library",
    ),
    p("libjansson", "base", v("2.14", 3), "libc", abi="4", section="libs", description="C library for JSON"),
    p(
        "odhcp6c",
        "base",
        v("2023-05-12-bcd28363", 20, b24_10=("2025.02.17~7d21e8d8", 1)),
        "libc",
        description="Embedded DHCPv6 client",
    ),
    p(
        "odhcpd-ipv6only",
        "base",
        v("2024-05-08-a2988231", 1, b24_10=("2025.06.01~f1b3b0f5", 1)),
        "libc libubus libuci libubox libnl-tiny",
        conflicts="odhcpd",
        description="DHCPv6/RA server (IPv6 only)",
    ),
    p(
        "odhcpd",
        "base",
        v("2024-05-08-a2988231", 1, b24_10=("2025.06.01~f1b3b0f5", 1)),
        "libc libubus libuci libubox libnl-tiny",
        conflicts="odhcpd-ipv6only",
        description="DHCP/RA server",
    ),
    p(
        "ppp",
        "base",
        v("2.4.9.git-2021-01-04", 4, b24_10=("2.5.1", 1)),
        "libc kmod-ppp",
        description="PPP daemon",
    ),
    p(
        "ppp-mod-pppoe",
        "base",
        v("2.4.9.git-2021-01-04", 4, b24_10=("2.5.1", 1)),
        "libc ppp kmod-pppoe",
        description="PPPoE plugin for pppd",
    ),
    p(
        "libustream-mbedtls",
        "base",
        v("2023-02-25-498f6e26", 1, b24_10=("2024.07.28~99bd3d2b", 1)),
        "libc libubox libmbedtls",
        provides="libustream-ssl",
        abi="20201210",
        section="libs",
        description="ustream SSL library (mbedtls)",
    ),
    p(
        "libustream-wolfssl",
        "base",
        v("2023-02-25-498f6e26", 1, b24_10=("2024.07.28~99bd3d2b", 1)),
        "libc libubox libwolfssl",
        provides="libustream-ssl",
        abi="20201210",
        section="libs",
        description="ustream SSL library (wolfssl)",
    ),
    p(
        "libustream-openssl",
        "base",
        v("2023-02-25-498f6e26", 1, b24_10=("2024.07.28~99bd3d2b", 1)),
        "libc libubox libopenssl",
        provides="libustream-ssl",
        abi="20201210",
        section="libs",
        description="ustream SSL library (openssl)",
    ),
    p(
        "libmbedtls",
        "base",
        v("2.28.9", 1, b24_10=("3.6.4", 1)),
        "libc",
        abi={"*": "12", "24.10": "21"},
        section="libs",
        description="Embedded SSL library",
    ),
    p(
        "libwolfssl",
        "base",
        v("5.7.2", 1, b24_10=("5.7.6", 1)),
        "libc",
        abi={"*": "5.7.2.ee39414e", "24.10": "5.7.6.e624513f"},
        section="libs",
        description="wolfSSL library",
    ),
    p(
        "libopenssl",
        "base",
        v("3.0.15", 1, b24_10=("3.0.16", 1), b25_12=("3.5.2", 1)),
        "libc",
        abi="3",
        section="libs",
        description="Open source SSL toolkit",
    ),
    p("zlib", "base", v("1.3.1", 1), "libc", section="libs", description="Compression library"),
    p(
        "wpad-basic-mbedtls",
        "base",
        v("2023-09-08-e5ccbfc6", 6, b24_10=("2024.09.15~5ace39b0", 1)),
        "libc hostapd-common libubus libmbedtls libnl-tiny",
        provides="hostapd wpad wpad-basic",
        conflicts="wpad-basic-wolfssl wpad-mini",
        description="IEEE 802.1x Auth/Supplicant (basic, mbedTLS)",
    ),
    p(
        "wpad-basic-wolfssl",
        "base",
        v("2023-09-08-e5ccbfc6", 6, b24_10=("2024.09.15~5ace39b0", 1)),
        "libc hostapd-common libubus libwolfssl libnl-tiny",
        provides="hostapd wpad wpad-basic",
        conflicts="wpad-basic-mbedtls wpad-mini",
        description="IEEE 802.1x Auth/Supplicant (basic, wolfSSL)",
    ),
    p(
        "wpad-mini",
        "base",
        v("2023-09-08-e5ccbfc6", 6, b24_10=("2024.09.15~5ace39b0", 1)),
        "libc hostapd-common libubus libnl-tiny",
        provides="hostapd wpad",
        conflicts="wpad-basic-mbedtls wpad-basic-wolfssl",
        description="IEEE 802.1x Auth/Supplicant (WPA-PSK only)",
    ),
    p(
        "hostapd-common",
        "base",
        v("2023-09-08-e5ccbfc6", 6, b24_10=("2024.09.15~5ace39b0", 1)),
        "libc",
        description="hostapd/wpa_supplicant common support files",
    ),
    p(
        "iw",
        "base",
        v("5.19", 1, b24_10=("6.9", 1)),
        "libc libnl-tiny",
        description="cfg80211 configuration utility",
    ),
    p(
        "iwinfo",
        "base",
        v("2023-07-01-ca79f641", 1, b24_10=("2024.10.20~b94f066e", 1)),
        "libc libiwinfo",
        description="Generalized Wireless Information utility",
    ),
    p(
        "libiwinfo",
        "base",
        v("2023-07-01-ca79f641", 1, b24_10=("2024.10.20~b94f066e", 1)),
        "libc libnl-tiny libuci",
        abi={"*": "20210430", "24.10": "20230701"},
        section="libs",
        description="Generalized Wireless Information library",
    ),
    p(
        "wireless-regdb",
        "base",
        v("2024.07.04", 1, b24_10=("2025.02.20", 1)),
        "",
        arch_all=True,
        description="Wireless Regulatory Database",
    ),
    p(
        "ath10k-firmware-qca988x-ct",
        "base",
        v("2023-03-21", 1, b24_10=("2024.05.16", 1)),
        "",
        section="firmware",
        description="ath10k-ct firmware for QCA988x devices",
    ),
    p(
        "swconfig",
        "base",
        v("12", None),
        "libc libuci libnl-tiny",
        description="Switch configuration utility",
    ),
    p(
        "uboot-envtools",
        "base",
        v("2023.04", 1, b24_10=("2024.10", 1)),
        "libc",
        description="read/modify U-Boot bootloader environment",
    ),
    p(
        "partx-utils",
        "base",
        v("2.39", 2, b24_10=("2.40.2", 1)),
        "libc libfdisk",
        description="partx utilities",
    ),
    p(
        "libfdisk",
        "base",
        v("2.39", 2, b24_10=("2.40.2", 1)),
        "libc libblkid libuuid",
        abi="1",
        section="libs",
        description="Partition table manipulation library",
    ),
    p(
        "libblkid",
        "base",
        v("2.39", 2, b24_10=("2.40.2", 1)),
        "libc libuuid",
        abi="1",
        section="libs",
        description="Block device id library",
    ),
    p(
        "libuuid",
        "base",
        v("2.39", 2, b24_10=("2.40.2", 1)),
        "libc",
        abi="1",
        section="libs",
        description="DCE compatible UUID library",
    ),
    p("mkf2fs", "base", v("1.16.0", 1), "libc libf2fs", description="F2FS formatting utility"),
    p("libf2fs", "base", v("1.16.0", 1), "libc libuuid", abi="6", section="libs", description="F2FS library"),
    p(
        "e2fsprogs",
        "base",
        v("1.47.0", 2, b24_10=("1.47.1", 1)),
        "libc libuuid libext2fs libcomerr",
        description="ext2/3/4 filesystem utilities",
    ),
    p(
        "libext2fs",
        "base",
        v("1.47.0", 2, b24_10=("1.47.1", 1)),
        "libc libcomerr",
        abi="2",
        section="libs",
        description="ext2/3/4 filesystem library",
    ),
    p(
        "libcomerr",
        "base",
        v("1.47.0", 2, b24_10=("1.47.1", 1)),
        "libc",
        abi="0",
        section="libs",
        description="Common error description library",
    ),
    p("ucode", "base", _UCODE, "libc libucode", description="Tiny JavaScript-like scripting language"),
    p(
        "libucode",
        "base",
        _UCODE,
        "libc libjson-c",
        abi={"*": "20230711", "25.12": "20250529"},
        section="libs",
        description="ucode runtime library",
    ),
    p("ucode-mod-fs", "base", _UCODE, "libc libucode", description="ucode filesystem module"),
    p(
        "ucode-mod-ubus",
        "base",
        _UCODE,
        "libc libucode libubus libblobmsg-json",
        description="ucode ubus module",
    ),
    p("ucode-mod-uci", "base", _UCODE, "libc libucode libuci", description="ucode uci module"),
    p("ucode-mod-uloop", "base", _UCODE, "libc libucode libubox", description="ucode uloop module"),
    p("ucode-mod-uclient", "base", _UCODE, "libc libucode libuclient", description="ucode uclient module"),
    p(
        "rpcd",
        "base",
        v("2023-07-01-c07ab2f9", 1, b24_10=("2025.01.29~8ff7ac2e", 1)),
        "libc libubus libubox libuci libblobmsg-json libjson-c",
        description="OpenWrt ubus RPC backend server",
    ),
    p(
        "rpcd-mod-file",
        "base",
        v("2023-07-01-c07ab2f9", 1, b24_10=("2025.01.29~8ff7ac2e", 1)),
        "libc rpcd libubus",
        description="rpcd file plugin",
    ),
    p(
        "rpcd-mod-rpcsys",
        "base",
        v("2023-07-01-c07ab2f9", 1, b24_10=("2025.01.29~8ff7ac2e", 1)),
        "libc rpcd libubus",
        description="rpcd system plugin (sysupgrade, packagelist)",
    ),
    p(
        "uhttpd",
        "base",
        v("2023-06-25-34a8a74d", 1, b24_10=("2025.07.06~b2fe3a0f", 1)),
        "libc libubox libblobmsg-json libjson-script libjson-c",
        description="Tiny HTTP server",
    ),
    p(
        "uhttpd-mod-ubus",
        "base",
        v("2023-06-25-34a8a74d", 1, b24_10=("2025.07.06~b2fe3a0f", 1)),
        "libc uhttpd libubus libblobmsg-json",
        description="uhttpd ubus JSON-RPC plugin",
    ),
    p(
        "ip-full",
        "base",
        v("6.3.0", 1, b24_10=("6.11.0", 1)),
        "libc libnl-tiny",
        provides="ip",
        conflicts="ip-tiny",
        description="Routing control utility (full)",
    ),
    p(
        "ip-tiny",
        "base",
        v("6.3.0", 1, b24_10=("6.11.0", 1)),
        "libc libnl-tiny",
        provides="ip",
        conflicts="ip-full",
        description="Routing control utility (minimal)",
    ),
    p(
        "cgi-io",
        "base",
        v("2022-08-10-901b0f04", 21, b24_10=("2022.08.10~901b0f04", 22)),
        "libc libubox libubus",
        description="CGI utility for handling up/downloading of files",
    ),
    # -- packages feed -----------------------------------------------------------------------------
    p(
        "attendedsysupgrade-common",
        "packages",
        v("8", None, b24_10=("10", None)),
        "libc",
        section="utils",
        arch_all=True,
        description="Common files needed by attendedsysupgrade clients",
    ),
    p(
        "auc",
        "packages",
        v("0.3.2", 1),
        "libc attendedsysupgrade-common libblobmsg-json libubox libuci libubus libuclient rpcd-mod-rpcsys",
        section="utils",
        branches=ONLY_2305,
        description="Attended sysUpgrade CLI (C)",
    ),
    p(
        "owut",
        "packages",
        v("2025.07.02~c5ef2f88", 1),
        "attendedsysupgrade-common ucode>=2024.07.11 ucode-mod-fs "
        "ucode-mod-ubus ucode-mod-uci ucode-mod-uclient ucode-mod-uloop rpcd-mod-rpcsys",
        section="utils",
        arch_all=True,
        branches=FROM_2410,
        description="OpenWrt Upgrade Tool",
    ),
    p(
        "curl",
        "packages",
        v("8.7.1", 1, b24_10=("8.12.1", 2), v24_10_5=("8.14.1", 1), b25_12=("8.15.0", 1)),
        "libc libcurl=@",
        section="net",
        description="A client-side URL transfer utility",
    ),
    p(
        "libcurl",
        "packages",
        v("8.7.1", 1, b24_10=("8.12.1", 2), v24_10_5=("8.14.1", 1), b25_12=("8.15.0", 1)),
        "libc libmbedtls zlib libnghttp2",
        abi="4",
        section="libs",
        description="A client-side URL transfer library",
    ),
    p(
        "libnghttp2",
        "packages",
        v("1.57.0", 1, b24_10=("1.63.0", 1)),
        "libc",
        abi="14",
        section="libs",
        description="Library implementing the framing layer of HTTP/2",
    ),
    p(
        "python3-light",
        "packages",
        v("3.11.7", 1, b24_10=("3.11.10", 1), b25_12=("3.13.5", 1)),
        "libc python3-base libffi",
        section="lang",
        payload=400 * 1024,
        description="Python 3.x light installation",
    ),
    p(
        "python3-base",
        "packages",
        v("3.11.7", 1, b24_10=("3.11.10", 1), b25_12=("3.13.5", 1)),
        "libc libpython3",
        section="lang",
        description="Python 3.x interpreter",
    ),
    p(
        "libpython3",
        "packages",
        v("3.11.7", 1, b24_10=("3.11.10", 1), b25_12=("3.13.5", 1)),
        "libc libffi zlib",
        section="libs",
        description="Python 3.x core library",
    ),
    p("libffi", "packages", v("3.4.6", 1), "libc", section="libs", description="Foreign Function Interface"),
    p(
        "htop",
        "packages",
        v("3.3.0", 1, b24_10=("3.4.0", 1)),
        "libc libncurses",
        section="admin",
        description="Interactive processes viewer",
    ),
    p(
        "libncurses",
        "packages",
        v("6.4", 2, b24_10=("6.4", 3)),
        "libc terminfo",
        abi="6",
        section="libs",
        description="Terminal handling library",
    ),
    p(
        "terminfo",
        "packages",
        v("6.4", 2, b24_10=("6.4", 3)),
        "libc",
        section="libs",
        description="Terminal Info Database (ncurses)",
    ),
    p(
        "nano",
        "packages",
        v("7.2", 2, b24_10=("8.3", 1)),
        "libc libncurses",
        section="utils",
        description="An enhanced clone of the Pico text editor",
    ),
    p(
        "vim",
        "packages",
        v("9.0", 2, b24_10=("9.1", 1)),
        "libc libncurses",
        section="utils",
        branches=BEFORE_2512,
        description="Vi IMproved (removed in 25.12: use vim-tiny)",
    ),
    p(
        "tcpdump",
        "packages",
        v("4.99.4", 1, b24_10=("4.99.5", 1)),
        "libc libpcap",
        section="net",
        description="Network monitoring and data acquisition tool",
    ),
    p(
        "libpcap",
        "packages",
        v("1.10.4", 1, b24_10=("1.10.5", 1)),
        "libc",
        abi="1",
        section="libs",
        description="Packet capture library",
    ),
    p(
        "wireguard-tools",
        "packages",
        v("1.0.20210914", 3),
        "libc kmod-wireguard",
        section="net",
        description="WireGuard userspace control program",
    ),
    p(
        "iperf3",
        "packages",
        v("3.17.1", 1, b24_10=("3.18", 1)),
        "libc libiperf3",
        section="net",
        description="Internet Protocol bandwidth measuring tool",
    ),
    p(
        "libiperf3",
        "packages",
        v("3.17.1", 1, b24_10=("3.18", 1)),
        "libc",
        abi="0",
        section="libs",
        description="Internet Protocol bandwidth measuring library",
    ),
    p(
        "adblock",
        "packages",
        v("4.2.2", 1, b24_10=("4.3.4", 1)),
        "libc jshn jsonfilter curl|uclient-fetch",
        section="net",
        arch_all=True,
        description="Powerful adblock script to block ad/abuse domains",
    ),
    p(
        "openssh-sftp-server",
        "packages",
        v("9.6p1", 1, b24_10=("9.9p2", 1), b25_12=("9.9_p2", 1)),
        "libc",
        section="net",
        description="OpenSSH SFTP server",
    ),
    # -- luci feed ---------------------------------------------------------------------------------
    _luci(
        "luci",
        "libc luci-light luci-app-firewall luci-app-package-manager luci-proto-ppp luci-proto-ipv6",
        branches=FROM_2410,
        description="LuCI interface with uhttpd as web server",
    ),
    _luci(
        "luci",
        "libc luci-light luci-app-firewall luci-app-opkg luci-proto-ppp luci-proto-ipv6",
        branches=ONLY_2305,
        description="LuCI interface with uhttpd as web server",
    ),
    _luci(
        "luci-light",
        "libc luci-base luci-mod-admin-full luci-theme-bootstrap uhttpd uhttpd-mod-ubus rpcd",
        description="Minimum LuCI for SSL/TLS support",
    ),
    _luci(
        "luci-ssl",
        "libc luci-light libustream-mbedtls|libustream-wolfssl|libustream-openssl",
        description="LuCI with HTTPS support",
    ),
    p(
        "luci-base",
        "luci",
        _LUCI,
        "libc rpcd rpcd-mod-file rpcd-mod-luci cgi-io ucode ucode-mod-fs ucode-mod-uci "
        "ucode-mod-ubus liblucihttp",
        section="luci",
        description="LuCI core libraries",
    ),
    p(
        "rpcd-mod-luci",
        "luci",
        v("20240305", 1, b24_10=("20240305", 2)),
        "libc rpcd libubus libuci libiwinfo",
        section="luci",
        description="Provides LuCI-specific RPC methods",
    ),
    p(
        "liblucihttp",
        "luci",
        v("2023-03-15-9b5b683f", 1, b24_10=("2023.03.15~9b5b683f", 1)),
        "libc libubox",
        abi="0",
        section="libs",
        description="HTTP utility library",
    ),
    _luci(
        "luci-mod-admin-full",
        "libc luci-base luci-mod-status luci-mod-system luci-mod-network",
        description="LuCI administration, full",
    ),
    _luci("luci-mod-status", description="LuCI status pages"),
    _luci("luci-mod-system", description="LuCI system pages"),
    _luci("luci-mod-network", "libc luci-base rpcd-mod-iwinfo", description="LuCI network administration"),
    p(
        "rpcd-mod-iwinfo",
        "base",
        v("2023-07-01-c07ab2f9", 1, b24_10=("2025.01.29~8ff7ac2e", 1)),
        "libc rpcd libiwinfo",
        description="rpcd iwinfo plugin",
    ),
    _luci("luci-theme-bootstrap", description="Bootstrap theme"),
    _luci(
        "luci-app-firewall",
        "libc luci-base firewall4|firewall",
        branches=ONLY_2305,
        description="Firewall and port forwarding",
    ),
    _luci(
        "luci-app-firewall",
        "libc luci-base firewall4",
        branches=FROM_2410,
        description="Firewall and port forwarding",
    ),
    _luci("luci-app-opkg", "libc luci-base opkg", branches=ONLY_2305, description="opkg package management"),
    _luci("luci-app-package-manager", branches=FROM_2410, description="Software management (opkg and apk)"),
    _luci(
        "luci-app-attendedsysupgrade",
        "libc luci-base attendedsysupgrade-common rpcd-mod-rpcsys",
        description="LuCI support for attended sysupgrades",
    ),
    _luci("luci-proto-ipv6", description="Support for DHCPv6/6in4/6to4/6rd/DS-Lite/aiccu"),
    _luci("luci-proto-ppp", description="Support for PPP/PPPoE/PPPoA/PPtP"),
    _luci("luci-proto-wireguard", "libc luci-base wireguard-tools", description="Support for WireGuard VPN"),
    _luci("luci-app-adblock", "libc luci-base adblock", description="LuCI support for adblock"),
    _luci("luci-i18n-base-de", "libc luci-base", description="Translation for luci-base - Deutsch (German)"),
    _luci("luci-i18n-base-fr", "libc luci-base", description="Translation for luci-base - Français (French)"),
    _luci(
        "luci-i18n-firewall-de",
        "libc luci-app-firewall",
        description="Translation for luci-app-firewall - Deutsch (German)",
    ),
)

#: Kernel modules: name → dependencies besides the kernel. Every kmod depends on ``kernel (=<exact>)``.
KMODS: dict[str, str] = {
    "kmod-nf-conntrack": "kmod-nf-reject",
    "kmod-nf-reject": "",
    "kmod-nf-nat": "kmod-nf-conntrack",
    "kmod-nf-flow": "kmod-nf-conntrack",
    "kmod-nft-core": "kmod-nf-reject kmod-nf-conntrack kmod-lib-crc32c",
    "kmod-nft-nat": "kmod-nft-core kmod-nf-nat",
    "kmod-nft-offload": "kmod-nf-flow kmod-nft-nat",
    "kmod-nft-fib": "kmod-nft-core",
    "kmod-lib-crc32c": "kmod-crypto-crc32c",
    "kmod-crypto-crc32c": "kmod-crypto-hash",
    "kmod-crypto-hash": "",
    "kmod-lib-crc16": "",
    "kmod-lib-crc-ccitt": "",
    "kmod-slhc": "",
    "kmod-ppp": "kmod-lib-crc-ccitt kmod-slhc",
    "kmod-pppox": "kmod-ppp",
    "kmod-pppoe": "kmod-ppp kmod-pppox",
    "kmod-tun": "",
    "kmod-gpio-button-hotplug": "",
    "kmod-button-hotplug": "",
    "kmod-leds-reset": "",
    "kmod-usb-core": "",
    "kmod-usb-ehci": "kmod-usb-core",
    "kmod-usb2": "kmod-usb-core kmod-usb-ehci",
    "kmod-usb3": "kmod-usb-core",
    "kmod-usb-chipidea2": "kmod-usb2",
    "kmod-usb-ledtrig-usbport": "kmod-usb-core",
    "kmod-scsi-core": "",
    "kmod-usb-storage": "kmod-scsi-core kmod-usb-core",
    "kmod-fs-ext4": "kmod-lib-crc16 kmod-crypto-hash",
    "kmod-fs-vfat": "",
    "kmod-cfg80211": "",
    "kmod-mac80211": "kmod-cfg80211",
    "kmod-ath": "kmod-mac80211",
    "kmod-ath9k-common": "kmod-ath",
    "kmod-ath9k": "kmod-ath9k-common",
    "kmod-ath10k-ct": "kmod-ath kmod-hwmon-core",
    "kmod-hwmon-core": "",
    "kmod-hwmon-pwmfan": "kmod-hwmon-core",
    "kmod-i2c-core": "",
    "kmod-i2c-gpio": "kmod-i2c-core",
    "kmod-mt76-core": "kmod-mac80211",
    "kmod-mt76-connac": "kmod-mt76-core",
    "kmod-mt7915e": "kmod-mt76-connac",
    "kmod-mt7981-firmware": "kmod-mt7915e",
    "kmod-mt7986-firmware": "kmod-mt7915e",
    "kmod-e1000e": "",
    "kmod-igc": "",
    "kmod-r8169": "",
    "kmod-udptunnel4": "",
    "kmod-udptunnel6": "",
    "kmod-wireguard": "kmod-udptunnel4 kmod-udptunnel6",
}
