"""The request model: every §6.7 input item real clients send, and the texts invalid bodies are answered
with (the words of the previous server, which clients show verbatim)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asud.build.normalise import normalise_request
from asud.build.request import (
    BuildRequest,
    FieldError,
    InvalidRequest,
    parse_build_request,
    parse_build_request_json,
)
from tests.build.bodies import LUCI, OFS

OWUT = {
    "client": "owut/2026", "target": "x86/64", "profile": "generic", "version": "24.10.4",
    "version_code": "r28427-6df0e3d02a", "filesystem": "ext4", "diff_packages": True,
    "packages_versions": {"base-files": "1647~6df0e3d02a", "luci": "25.010.0~abc"}, "rootfs_size_mb": 256,
}
BASE = {"version": "24.10.4", "target": "x86/64", "profile": "generic"}
NAME = "'^(?:[A-Za-z0-9_][A-Za-z0-9_.,-]*)?$'"
PACKAGE = "'^[+-]?[A-Za-z0-9][A-Za-z0-9_.+-]*$'"
FILESYSTEMS = "'squashfs', 'ext4', 'ubifs', 'erofs', 'jffs2', 'jffs2-nand', 'targz' or 'cpiogz'"


def test_real_client_bodies_are_accepted() -> None:
    luci = normalise_request(parse_build_request(LUCI))
    assert luci.profile == "tplink_archer-c7-v5"
    assert luci.rootfs_size_mb is None
    ofs = parse_build_request(OFS)
    assert ofs.defaults is None and ofs.repositories == {} and ofs.repository_keys == []
    owut = normalise_request(parse_build_request(OWUT))
    assert owut.packages == ["base-files", "luci"]


def test_extra_fields_ignored_and_echo_order_stable() -> None:
    request = parse_build_request({**OFS, "unknown": 1})
    assert list(request.to_json()) == [
        "distro", "version", "version_code", "target", "profile", "packages", "packages_versions",
        "diff_packages", "defaults", "rootfs_size_mb", "filesystem", "repositories", "repositories_mode",
        "repository_keys", "client",
    ]
    assert request.distro == "openwrt"


def test_echo_is_json_and_a_copy() -> None:
    request = parse_build_request(OWUT)
    echo = request.to_json()
    assert json.loads(json.dumps(echo)) == echo
    assert echo["packages_versions"] == OWUT["packages_versions"] and echo["defaults"] is None
    echo["packages"].append("x")
    assert request.packages == []
    assert parse_build_request(request.to_json()) == request


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
    with pytest.raises(InvalidRequest) as raised:
        parse_build_request({**OFS, field: value})
    assert raised.value.status_code == 400
    assert raised.value.errors[0].location[0] == field


def test_rootfs_limit_from_validation_context() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_build_request({**OFS, "rootfs_size_mb": 2048}, max_rootfs_size_mb=1024)
    assert raised.value.detail == (
        "Invalid request: rootfs_size_mb: Value error, rootfs_size_mb must be at most 1024"
    )
    assert parse_build_request({**OFS, "rootfs_size_mb": 512}).rootfs_size_mb == 512
    assert parse_build_request({**OFS, "rootfs_size_mb": 2048}).rootfs_size_mb == 2048


def test_values_are_read_leniently_as_before() -> None:
    request = parse_build_request({**BASE, "rootfs_size_mb": " 1_024 ", "diff_packages": "yes"})
    assert request.rootfs_size_mb == 1024 and request.diff_packages is True
    assert parse_build_request({**BASE, "rootfs_size_mb": "256.000"}).rootfs_size_mb == 256
    assert parse_build_request({**BASE, "rootfs_size_mb": 256.0}).rootfs_size_mb == 256
    assert parse_build_request({**BASE, "rootfs_size_mb": True}).rootfs_size_mb == 1
    assert parse_build_request({**BASE, "diff_packages": 0}).diff_packages is False
    assert parse_build_request({**BASE, "diff_packages": "OFF"}).diff_packages is False
    assert parse_build_request({**BASE, "client": ""}).client is None
    assert parse_build_request({**BASE, "defaults": None, "filesystem": None}).defaults is None
    assert parse_build_request({**BASE, "target": "x86/"}).target == "x86/"


# The detail of every kind of refusal, as the previous server (pydantic through FastAPI) worded it.
DETAILS: list[tuple[Any, str]] = [
    (None, "body: Input should be a valid dictionary or object to extract fields from"),
    ([], "body: Input should be a valid dictionary or object to extract fields from"),
    ("string", "body: Input should be a valid dictionary or object to extract fields from"),
    ({}, "version: Field required; target: Field required; profile: Field required"),
    ({"version": None},
     "version: Input should be a valid string; target: Field required; profile: Field required"),
    ({"packages": {"a": 1}},
     "version: Field required; target: Field required; profile: Field required; packages: Input should be a "
     "valid list"),
    ({"version": "24.10.4", "profile": "generic"}, "target: Field required"),
    ({**BASE, "profile": "generic; rm -rf /"}, f"profile: String should match pattern {NAME}"),
    ({**BASE, "version": "x", "target": "bad", "profile": "a b"},
     f"target: String should match pattern '^[A-Za-z0-9_]*/[A-Za-z0-9_]*$'; profile: String should match "
     f"pattern {NAME}"),
    ({**BASE, "profile": "a" * 129}, "profile: String should have at most 128 characters"),
    ({**BASE, "profile": "a b" * 50}, "profile: String should have at most 128 characters"),
    ({**BASE, "distro": "../openwrt"}, f"distro: String should match pattern {NAME}"),
    ({**BASE, "version_code": None}, "version_code: Input should be a valid string"),
    ({**BASE, "version": 24}, "version: Input should be a valid string"),
    ({**BASE, "version": "a\ud800"},
     "version: Input should be a valid string, unable to parse raw data as a unicode string"),
    ({**BASE, "packages": ["--help"]}, f"packages.0: String should match pattern {PACKAGE}"),
    ({**BASE, "packages": ["ok", "", 3, "a b"]},
     f"packages.1: String should have at least 1 character; packages.2: Input should be a valid string; "
     f"packages.3: String should match pattern {PACKAGE}"),
    ({**BASE, "packages": "luci"}, "packages: Input should be a valid list"),
    ({**BASE, "packages": None}, "packages: Input should be a valid list"),
    ({**BASE, "packages": [f"p{i}" for i in range(1999)] + ["", 5]},
     "packages: List should have at most 2000 items after validation, not 2001"),
    ({**BASE, "packages_versions": {"luci": "1.0 ; x"}},
     "packages_versions.luci: String should match pattern '^[A-Za-z0-9_.+~:-]*$'"),
    ({**BASE, "packages_versions": {"luci\n": "1.0"}},
     f"packages_versions.luci\n.[key]: String should match pattern {PACKAGE}"),
    ({**BASE, "packages_versions": {"luci": 1}}, "packages_versions.luci: Input should be a valid string"),
    ({**BASE, "packages_versions": ["luci"]}, "packages_versions: Input should be a valid dictionary"),
    ({**BASE, "packages_versions": {"bad key": "1", **{f"p{i}": "1" for i in range(2000)}}},
     f"packages_versions.bad key.[key]: String should match pattern {PACKAGE}"),
    ({**BASE, "packages_versions": {"bad key": "1", **{f"p{i}": "1" for i in range(2001)}}},
     "packages_versions: Dictionary should have at most 2000 items after validation, not more"),
    ({**BASE, "rootfs_size_mb": "big"},
     "rootfs_size_mb: Input should be a valid integer, unable to parse string as an integer"),
    ({**BASE, "rootfs_size_mb": "100; reboot"},
     "rootfs_size_mb: Input should be a valid integer, unable to parse string as an integer"),
    ({**BASE, "rootfs_size_mb": "2__56"},
     "rootfs_size_mb: Input should be a valid integer, unable to parse string as an integer"),
    ({**BASE, "rootfs_size_mb": "256."},
     "rootfs_size_mb: Input should be a valid integer, unable to parse string as an integer"),
    ({**BASE, "rootfs_size_mb": "\u0661\u0662"},
     "rootfs_size_mb: Input should be a valid integer, unable to parse string as an integer"),
    ({**BASE, "rootfs_size_mb": 0}, "rootfs_size_mb: Input should be greater than or equal to 1"),
    ({**BASE, "rootfs_size_mb": "-0"}, "rootfs_size_mb: Input should be greater than or equal to 1"),
    ({**BASE, "rootfs_size_mb": False}, "rootfs_size_mb: Input should be greater than or equal to 1"),
    ({**BASE, "rootfs_size_mb": 10**9}, "rootfs_size_mb: Input should be less than or equal to 1048576"),
    ({**BASE, "rootfs_size_mb": "1" * 30}, "rootfs_size_mb: Input should be less than or equal to 1048576"),
    ({**BASE, "rootfs_size_mb": 1.5},
     "rootfs_size_mb: Input should be a valid integer, got a number with a fractional part"),
    ({**BASE, "rootfs_size_mb": 1e20},
     "rootfs_size_mb: Unable to parse input string as an integer, exceeded maximum size"),
    ({**BASE, "rootfs_size_mb": "1" * 4301},
     "rootfs_size_mb: Unable to parse input string as an integer, exceeded maximum size"),
    ({**BASE, "rootfs_size_mb": float("nan")}, "rootfs_size_mb: Input should be a finite number"),
    ({**BASE, "rootfs_size_mb": [1]}, "rootfs_size_mb: Input should be a valid integer"),
    ({**BASE, "filesystem": "btrfs"}, f"filesystem: Input should be {FILESYSTEMS}"),
    ({**BASE, "filesystem": 3}, f"filesystem: Input should be {FILESYSTEMS}"),
    ({**BASE, "repositories_mode": "replace; reboot"},
     "repositories_mode: Input should be 'append' or 'replace'"),
    ({**BASE, "repositories_mode": None}, "repositories_mode: Input should be 'append' or 'replace'"),
    ({**BASE, "diff_packages": 2},
     "diff_packages: Input should be a valid boolean, unable to interpret input"),
    ({**BASE, "diff_packages": " true "},
     "diff_packages: Input should be a valid boolean, unable to interpret input"),
    ({**BASE, "diff_packages": 1.5}, "diff_packages: Input should be a valid boolean"),
    ({**BASE, "diff_packages": None}, "diff_packages: Input should be a valid boolean"),
    ({**BASE, "repositories": {"bad name": "https://x/y"}},
     "repositories.bad name.[key]: String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'"),
    ({**BASE, "repositories": {"bad key": 5}},
     "repositories.bad key.[key]: String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'; "
     "repositories.bad key: Input should be a valid string"),
    ({**BASE, "repositories": {"": "x"}},
     "repositories..[key]: String should match pattern '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'"),
    ({**BASE, "repositories": {"ok": "https://x/ y"}},
     "repositories.ok: String should match pattern '^\\S+$'"),
    ({**BASE, "repositories": {"ok": "a\x85b"}}, "repositories.ok: String should match pattern '^\\S+$'"),
    ({**BASE, "repositories": {"r": "u" * 1025}},
     "repositories.r: String should have at most 1024 characters"),
    ({**BASE, "repositories": []}, "repositories: Input should be a valid dictionary"),
    ({**BASE, "repositories": {f"r{i}": "https://a/b" for i in range(17)}},
     "repositories: Dictionary should have at most 16 items after validation, not more"),
    ({**BASE, "repository_keys": ["a\x1b[2J"]},
     "repository_keys: Value error, repository keys must be printable text"),
    ({**BASE, "repository_keys": "k"}, "repository_keys: Input should be a valid list"),
    ({**BASE, "repository_keys": [1]}, "repository_keys.0: Input should be a valid string"),
    ({**BASE, "repository_keys": ["k"] * 17},
     "repository_keys: List should have at most 16 items after validation, not 17"),
    ({**BASE, "repository_keys": ["k" * 1025]},
     "repository_keys.0: String should have at most 1024 characters"),
    ({**BASE, "client": "luci\n"}, "client: Value error, client must be printable text"),
    ({**BASE, "client": "\u00a0"}, "client: Value error, client must be printable text"),
    ({**BASE, "client": "c" * 257}, "client: String should have at most 256 characters"),
    ({**BASE, "client": 5}, "client: Input should be a valid string"),
    ({**BASE, "defaults": 5}, "defaults: Input should be a valid string"),
]


@pytest.mark.parametrize(("body", "detail"), DETAILS, ids=lambda item: repr(item)[:50])
def test_refusals_are_worded_as_before(body: Any, detail: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_build_request(body)
    assert raised.value.detail == f"Invalid request: {detail}"


@pytest.mark.parametrize(
    "body",
    [
        {**BASE, "rootfs_size_mb": "256"}, {**BASE, "rootfs_size_mb": "+256"},
        {**BASE, "rootfs_size_mb": "\t256\n"}, {**BASE, "rootfs_size_mb": "256\u00a0"},
        {**BASE, "rootfs_size_mb": "00256"}, {**BASE, "rootfs_size_mb": "1_000"},
        {**BASE, "diff_packages": "t"}, {**BASE, "diff_packages": 1.0}, {**BASE, "client": "naïve"},
        {**BASE, "repository_keys": ["a\r\nb", "", "\n\n"]}, {**BASE, "repositories": {"ok": "a\x1cb"}},
        {**BASE, "packages_versions": {"luci": ""}}, {**BASE, "version": ""}, {**BASE, "target": "/"},
    ],
    ids=lambda item: repr(item)[60:110],
)
def test_values_accepted_as_before(body: dict[str, Any]) -> None:
    parse_build_request(body)


def test_errors_name_their_fields() -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_build_request({**BASE, "packages": ["ok", ""], "filesystem": "btrfs"})
    assert [error.location for error in raised.value.errors] == [("packages", 1), ("filesystem",)]
    assert raised.value.errors[0] == FieldError(("packages", 1), "String should have at least 1 character")


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"{not json", "Invalid request: the body is not valid JSON"),
        (b"   ", "Invalid request: the body is not valid JSON"),
        (b"", "Invalid request: body: Field required"),
        (b"null",
         "Invalid request: body: Input should be a valid dictionary or object to extract fields from"),
        (b"\xff", "There was an error parsing the body"),
        (b'{"version": "\xff"}', "There was an error parsing the body"),
        (b"[" * 200_000 + b"]" * 200_000, "There was an error parsing the body"),
        (b'{"version": "24.10.4", "target": "x86/64", "profile": "generic", "client": ' + b"[" * 100
         + b"]" * 100 + b"}", "Invalid request: client: Input should be a valid string"),
        (b'{"version":"a","target":"a/b","profile":"p","rootfs_size_mb":NaN}',
         "Invalid request: rootfs_size_mb: Input should be a finite number"),
        (b'{"version":"a","version":"b\\n","target":"a/b","profile":"p"}',
         f"Invalid request: version: String should match pattern {NAME}"),
    ],
)
def test_raw_bodies(data: bytes, detail: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_build_request_json(data)
    assert raised.value.detail == detail


def test_raw_body_in_any_json_encoding() -> None:
    text = json.dumps({**BASE, "packages": ["luci"]})
    for encoding in ("utf-8", "utf-16", "utf-32"):
        assert parse_build_request_json(text.encode(encoding)).packages == ["luci"]
    assert parse_build_request_json(text.encode(), max_rootfs_size_mb=10) == BuildRequest(
        **BASE, packages=["luci"])
