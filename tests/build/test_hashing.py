"""The request hash and the image key: deterministic, semantic, and the same as the previous server's
(clients poll by the request hash, and stored builds are found by both)."""

from __future__ import annotations

from typing import Any

import pytest

from asud.build.hashing import image_key, request_hash
from asud.build.normalise import normalise_request
from asud.build.request import BuildRequest, parse_build_request
from tests.build.bodies import LUCI, OFS

GOLDEN_HASH = "e18bd332c5fdb0d5922ca36def05faa18ec9edd6474e05da1157cc00f8398242"

#: Request hashes the previous server (sysup) computed for these bodies.
REQUEST_HASHES: list[tuple[dict[str, Any], str]] = [
    ({"version": "24.10.4", "target": "x86/64", "profile": "generic"},
     "42d27eb897232becb6979cb455076712e79931b06d540d7b4724afa25a9b8c7a"),
    (OFS, "64d4d61119a45664cc5b11dda10290db9dfb2c547b5f7b2c2823692b457090ad"),
    (LUCI, "408cb4b4f012b3119819321ef3a84700ec46e6eda8f016ea20096a64136865f9"),
    ({"client": "owut/2026", "target": "x86/64", "profile": "generic", "version": "24.10.4",
      "version_code": "r28427-6df0e3d02a", "filesystem": "ext4", "diff_packages": True,
      "packages_versions": {"base-files": "1647~6df0e3d02a", "luci": "25.010.0~abc"}, "rootfs_size_mb": 256},
     "22f2be9fbb3fae6a3dbc07fee5104cba43870f57256e9a26e629201152998a7f"),
    ({"version": "SNAPSHOT", "target": "mediatek/filogic", "profile": "bananapi_bpi-r4",
      "packages": ["+luci", "htop", "luci", "-ppp"], "defaults": "uci set system.@system[0].hostname=x\n",
      "repositories": {"extra": "https://feeds.example.org/openwrt/extra"}, "repositories_mode": "replace",
      "repository_keys": ["RWSk", "RWAa"], "distro": "openwrt"},
     "78786b7d8e0e19dd49f98859b2920f93f9a458d991d435dcf5f2ca5fce378fff"),
    ({"version": "23.05.5", "target": "ramips/mt7621", "profile": "xiaomi_mi-router-4a-gigabit",
      "packages": ["luci-i18n-de", "kmod-usb3"], "rootfs_size_mb": 1024, "filesystem": "ext4",
      "repositories": {"a": "https://x/a"}, "repository_keys": []},
     "a5213a6eec669612c8224adfc093167588b8aedbe7ae2094d54879d883dafa53"),
]

COMMON: dict[str, Any] = dict(
    distro="openwrt", version="24.10.4", version_code="r28427-6df0e3d02a", target="x86/64", profile="generic",
    packages_versions={}, defaults=None, rootfs_size_mb=None, filesystem=None, repositories={},
    repositories_mode="append", repository_keys=[],
)
#: Image keys the previous server computed for ``COMMON`` with these changes.
IMAGE_KEYS: list[tuple[dict[str, Any], str]] = [
    ({"packages": {"luci": "25.010", "base-files": "1647~6df0e3d02a"}},
     "fd442f58186721b5a94d8828beda118e24f5358bd9332d5d1225e32a261dc0a3"),
    ({"packages": ["luci", "base-files", "-ppp"]},
     "5d79ff7c2f5fa7c8cb14d6d09b3e2d8016ddc4bbbfca3ceaec32047e9180d9d5"),
    ({"packages": ["luci"], "defaults": "echo hi", "rootfs_size_mb": 256, "filesystem": "squashfs"},
     "a630314fa6af0e38d091a103324ef413c5b9134e99e7366604b83e0e18bc2657"),
    ({"packages": ["luci"], "repositories": {"x": "https://x/y"}, "repositories_mode": "replace",
      "repository_keys": ["b", "a"], "packages_versions": {"luci": "1"}},
     "8611d810ffe7de192b42d553773da724eb2d46dc535dd8728b2a373e8285ee47"),
]


def _normalised(body: dict[str, Any]) -> BuildRequest:
    return normalise_request(parse_build_request(body))


def test_request_hash_is_deterministic_and_ignores_client_and_order() -> None:
    first = _normalised({**OFS, "packages": ["luci", "htop"]})
    second = _normalised({**OFS, "packages": ["htop", "luci"], "client": "other/1"})
    assert request_hash(first) == request_hash(second)
    assert len(request_hash(first)) == 64
    # Pinned: the hash must not change between processes or releases (clients poll by it).
    assert request_hash(first) == GOLDEN_HASH
    comma = _normalised({**LUCI})
    underscore = _normalised({**LUCI, "profile": "tplink_archer-c7-v5"})
    assert request_hash(comma) == request_hash(underscore)


@pytest.mark.parametrize(("body", "expected"), REQUEST_HASHES, ids=lambda item: repr(item)[:40])
def test_request_hash_is_the_previous_servers(body: dict[str, Any], expected: str) -> None:
    assert request_hash(_normalised(body)) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"version_code": "r1"}, {"defaults": "echo hi"}, {"rootfs_size_mb": 100}, {"filesystem": "ext4"},
        {"diff_packages": False}, {"packages": ["luci", "htop"]}, {"repository_keys": ["k"]},
        {"repositories": {"a": "https://example.org/a"}}, {"packages_versions": {"luci": "1"}},
        {"target": "x86/generic"}, {"version": "24.10.5"}, {"distro": "other"},
    ],
)
def test_request_hash_covers_semantic_fields(change: dict[str, object]) -> None:
    base = _normalised(OFS)
    changed = _normalised({**OFS, **change})
    assert request_hash(base) != request_hash(changed)


def test_image_key_depends_on_what_is_built() -> None:
    a = image_key(packages={"luci": "1", "base-files": "2"}, **COMMON)
    b = image_key(packages={"base-files": "2", "luci": "1"}, **COMMON)
    c = image_key(packages={"base-files": "2", "luci": "1.1"}, **COMMON)
    d = image_key(packages=["luci", "base-files"], **{**COMMON, "defaults": "x"})
    assert a == b != c
    assert d != a and len(d) == 64


@pytest.mark.parametrize(("change", "expected"), IMAGE_KEYS, ids=lambda item: repr(item)[:40])
def test_image_key_is_the_previous_servers(change: dict[str, Any], expected: str) -> None:
    assert image_key(**{**COMMON, **change}) == expected
