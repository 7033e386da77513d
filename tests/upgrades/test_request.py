"""Reading 2017/2019 and v1 upgrade-check bodies and hashing them."""

from __future__ import annotations

from typing import Any

import pytest

from asud.build.fields import InvalidRequest
from asud.config import DistroSettings
from asud.errors import BadRequest
from asud.upgrades.request import (
    MissingField,
    UpgradeCheckRequest,
    body_text,
    parse_legacy_request,
    parse_v1_request,
    read_target,
    required_text,
    resolve_distro,
)

DISTROS = {"openwrt": DistroSettings(), "libremesh": DistroSettings(aliases=["lime"])}


def parse(body: object) -> UpgradeCheckRequest:
    return parse_legacy_request(body, DISTROS, "openwrt")


def test_target_and_subtarget_or_combined() -> None:
    split = parse({"distro": "OpenWrt", "version": "24.10.4", "target": "ath79", "subtarget": "generic"})
    combined = parse({"version": "24.10.4", "target": "ath79/generic"})
    assert split == combined
    assert split.target == "ath79/generic" and split.distro == "openwrt"


def test_installed_and_revision_of_2019_clients() -> None:
    request = parse(
        {
            "distro": "LEDE",
            "version": "snapshot",
            "target": "x86/64",
            "installed": {"busybox": "1.36.1-r2"},
            "revision": "r32000-abc",
        }
    )
    assert request.distro == "openwrt"
    assert request.version == "SNAPSHOT"
    assert request.packages == {"busybox": "1.36.1-r2"}
    assert request.revision == "r32000-abc"
    assert parse({"version": "24.10-snapshot", "target": "x86/64"}).version == "24.10-SNAPSHOT"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target": "x86/64"}, "version"),
        ({"version": "24.10.4"}, "target"),
        ({"version": "24.10.4", "target": "x86"}, "subtarget"),
        ({"version": "", "target": "x86/64"}, "version"),
    ],
)
def test_missing_fields_are_named(body: dict[str, str], field: str) -> None:
    with pytest.raises(MissingField) as raised:
        parse(body)
    assert raised.value.field == field
    assert raised.value.status_code == 400


def test_malformed_bodies() -> None:
    for body in ([], {"version": 24, "target": "x86/64"}, {"version": "1", "target": "x/y", "packages": "x"}):
        with pytest.raises(BadRequest):
            parse(body)


def test_distro_names() -> None:
    assert resolve_distro("LIME", DISTROS, "openwrt") == "libremesh"
    assert resolve_distro(None, DISTROS, "openwrt") == "openwrt"
    with pytest.raises(BadRequest, match="distro"):
        resolve_distro("debian", DISTROS, "openwrt")


def test_hash_is_deterministic_and_semantic() -> None:
    one = parse({"version": "24.10.4", "target": "x86/64", "packages": {"a": "1", "b": "2"}})
    same = parse(
        {
            "distro": "openwrt",
            "version": "24.10.4",
            "target": "x86",
            "subtarget": "64",
            "installed": {"b": "2", "a": "1"},
        }
    )
    assert one.request_hash == same.request_hash
    assert len(one.request_hash) == 64 and int(one.request_hash, 16) >= 0
    other_version = parse({"version": "24.10.4", "target": "x86/64", "packages": {"a": "1", "b": "3"}})
    version_only = parse({"version": "24.10.4", "target": "x86/64"})
    empty = parse({"version": "24.10.4", "target": "x86/64", "packages": {}})
    hashes = {one.request_hash, other_version.request_hash, version_only.request_hash, empty.request_hash}
    assert len(hashes) == 4


def test_hash_is_the_previous_servers() -> None:
    # Computed by sysup for the same request: stored answers stay reachable by the hashes clients hold.
    request = parse({"version": "24.10.4", "target": "x86/64", "packages": {"b": "2", "a": "1"},
                     "revision": "r28427-6df0e3d02a"})
    assert request.request_hash == "3ce5bd912e4a11be3f1ec82520cbab419c9fd9daae5140b15a7fa71cd3610302"
    assert parse({"version": "SNAPSHOT", "target": "x86/64"}).request_hash == (
        "df99776bd40df1a7fb6075762b86e8cb9649d778c1676735df922ac816357d1c"
    )


def test_text_helpers_of_the_2017_bodies() -> None:
    body: dict[str, Any] = {"distro": " LEDE ", "empty": "", "none": None, "number": 5, "target": "ath79",
                            "subtarget": "generic"}
    assert body_text(body, "distro") == "LEDE"
    assert body_text(body, "empty") is None and body_text(body, "none") is None
    assert body_text(body, "absent") is None
    with pytest.raises(BadRequest, match="Invalid parameter: number must be a string"):
        body_text(body, "number")
    with pytest.raises(MissingField, match="Missing parameter: empty"):
        required_text(body, "empty")
    assert read_target(body) == "ath79/generic"
    assert read_target({"target": "x86/64", "subtarget": "ignored"}) == "x86/64"


def v1(body: object) -> UpgradeCheckRequest:
    return parse_v1_request(body, DISTROS, "openwrt")


def test_v1_body() -> None:
    request = v1({"version": " snapshot ", "target": "x86/64", "packages": {" curl ": "8.1 ", "x": ""},
                  "revision": "", "extra": 1})
    assert request == UpgradeCheckRequest(distro="openwrt", version="SNAPSHOT", target="x86/64",
                                          packages={"curl": "8.1", "x": ""})
    names = v1({"distro": "lime", "version": "24.10.4", "target": "x86/64", "packages": ["curl", " "]})
    assert names.distro == "libremesh" and names.packages == {"curl": ""}
    # the same check through either API has the same hash
    assert v1({"version": "24.10.4", "target": "x86/64"}).request_hash == parse(
        {"version": "24.10.4", "target": "x86", "subtarget": "64"}).request_hash


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (None, "body: Input should be a valid dictionary or object to extract fields from"),
        ({}, "version: Field required; target: Field required"),
        ({"version": "24.10.4", "target": "x86"},
         "target: String should match pattern '^[\\w.-]+/[\\w.-]+$'"),
        ({"version": "24.10.4", "target": "x86/64\n"},
         "target: String should match pattern '^[\\w.-]+/[\\w.-]+$'"),
        ({"version": 5, "target": "x86/64"}, "version: Input should be a valid string"),
        ({"version": "1", "target": "x/y", "distro": None}, "distro: Input should be a valid string"),
        ({"version": "1", "target": "x/y", "revision": 5}, "revision: Input should be a valid string"),
        ({"version": "1", "target": "x/y", "packages": 5},
         "packages.dict[str,str]: Input should be a valid dictionary; packages.list[str]: Input should be a "
         "valid list"),
        ({"version": "1", "target": "x/y", "packages": {"a": "1", "b": 2, "c": [1]}},
         "packages.dict[str,str].b: Input should be a valid string; "
         "packages.dict[str,str].c: Input should be a valid string; "
         "packages.list[str]: Input should be a valid list"),
        ({"version": "1", "target": "x/y", "packages": ["a", 1]},
         "packages.dict[str,str]: Input should be a valid dictionary; "
         "packages.list[str].1: Input should be a valid string"),
    ],
)
def test_v1_refusals_are_worded_as_before(body: object, detail: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        v1(body)
    assert raised.value.detail == f"Invalid request: {detail}"


def test_v1_unknown_distro() -> None:
    with pytest.raises(BadRequest, match="Unsupported distro: debian"):
        v1({"distro": "debian", "version": "1", "target": "x/y"})
