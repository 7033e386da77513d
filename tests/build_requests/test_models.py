"""The request model, normalisation and hashing: every §6.7 input item real clients send."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sysup.build_requests.hashing import image_key, request_hash
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.normalise import diff_packages, normalise_request

LUCI = {
    "client": "luci/25.010",
    "packages": ["luci", "-wpad-basic-mbedtls"],
    "profile": "tplink,archer-c7-v5",
    "target": "ath79/generic",
    "version": "24.10.4",
    "diff_packages": True,
    "filesystem": "squashfs",
    "rootfs_size_mb": None,
}
OFS = {
    "profile": "generic", "target": "x86/64", "packages": ["luci"], "defaults": "", "version_code": "",
    "version": "24.10.4", "diff_packages": True, "client": "ofs/v5", "repositories": {},
    "repository_keys": [],
}
GOLDEN_HASH = "e18bd332c5fdb0d5922ca36def05faa18ec9edd6474e05da1157cc00f8398242"
OWUT = {
    "client": "owut/2026", "target": "x86/64", "profile": "generic", "version": "24.10.4",
    "version_code": "r28427-6df0e3d02a", "filesystem": "ext4", "diff_packages": True,
    "packages_versions": {"base-files": "1647~6df0e3d02a", "luci": "25.010.0~abc"}, "rootfs_size_mb": 256,
}


def test_real_client_bodies_are_accepted() -> None:
    luci = normalise_request(BuildRequest.model_validate(LUCI))
    assert luci.profile == "tplink_archer-c7-v5"
    assert luci.rootfs_size_mb is None
    ofs = BuildRequest.model_validate(OFS)
    assert ofs.defaults is None and ofs.repositories == {} and ofs.repository_keys == []
    owut = normalise_request(BuildRequest.model_validate(OWUT))
    assert owut.packages == ["base-files", "luci"]


def test_extra_fields_ignored_and_echo_order_stable() -> None:
    request = BuildRequest.model_validate({**OFS, "unknown": 1})
    assert list(request.model_dump()) == [
        "distro", "version", "version_code", "target", "profile", "packages", "packages_versions",
        "diff_packages", "defaults", "rootfs_size_mb", "filesystem", "repositories", "repositories_mode",
        "repository_keys", "client",
    ]
    assert request.distro == "openwrt"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("profile", "generic\n"),
        ("profile", "gen eric"),
        ("profile", "a;rm -rf"),
        ("target", "x86/64/extra"),
        ("target", "x86"),
        ("version", "24.10.4\nSNAPSHOT"),
        ("packages", ["--option"]),
        ("packages", ["luci pkg"]),
        ("packages", ["luci\n"]),
        ("packages", ["$(reboot)"]),
        ("packages", [""]),
        ("filesystem", "btrfs"),
        ("rootfs_size_mb", 0),
        ("repositories", {"bad name": "https://example.org/feed"}),
        ("packages_versions", {"luci": "1.0 ; x"}),
        ("client", "luci\n"),
    ],
)
def test_injection_and_bad_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        BuildRequest.model_validate({**OFS, field: value})


def test_rootfs_limit_from_validation_context() -> None:
    with pytest.raises(ValidationError):
        BuildRequest.model_validate(
            {**OFS, "rootfs_size_mb": 2048}, context={"max_custom_rootfs_size_mb": 1024}
        )
    assert BuildRequest.model_validate({**OFS, "rootfs_size_mb": 512}).rootfs_size_mb == 512


def test_diff_packages_removes_unrequested_defaults() -> None:
    assert diff_packages(["luci", "dropbear"], ["dropbear", "ppp", "kmod-ath9k"]) == [
        "luci", "dropbear", "-kmod-ath9k", "-ppp",
    ]
    assert diff_packages(["luci", "-ppp"], ["ppp"]) == ["luci", "-ppp"]


def test_request_hash_is_deterministic_and_ignores_client_and_order() -> None:
    first = normalise_request(BuildRequest.model_validate({**OFS, "packages": ["luci", "htop"]}))
    second = normalise_request(
        BuildRequest.model_validate({**OFS, "packages": ["htop", "luci"], "client": "other/1"})
    )
    assert request_hash(first) == request_hash(second)
    assert len(request_hash(first)) == 64
    # Pinned: the hash must not change between processes or releases (clients poll by it).
    assert request_hash(first) == GOLDEN_HASH
    comma = normalise_request(BuildRequest.model_validate({**LUCI}))
    underscore = normalise_request(BuildRequest.model_validate({**LUCI, "profile": "tplink_archer-c7-v5"}))
    assert request_hash(comma) == request_hash(underscore)


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
    base = normalise_request(BuildRequest.model_validate(OFS))
    changed = normalise_request(BuildRequest.model_validate({**OFS, **change}))
    assert request_hash(base) != request_hash(changed)


def test_image_key_depends_on_what_is_built() -> None:
    common = dict(
        distro="openwrt", version="24.10.4", version_code="r1", target="x86/64", profile="generic",
        packages_versions={}, defaults=None, rootfs_size_mb=None, filesystem=None, repositories={},
        repositories_mode="append", repository_keys=[],
    )
    a = image_key(packages={"luci": "1", "base-files": "2"}, **common)  # type: ignore[arg-type]
    b = image_key(packages={"base-files": "2", "luci": "1"}, **common)  # type: ignore[arg-type]
    c = image_key(packages={"base-files": "2", "luci": "1.1"}, **common)  # type: ignore[arg-type]
    d = image_key(packages=["luci", "base-files"], **{**common, "defaults": "x"})  # type: ignore[arg-type]
    assert a == b != c
    assert d != a and len(d) == 64
