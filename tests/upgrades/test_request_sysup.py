"""Reading 2017/2019 upgrade-check bodies and hashing them."""

from __future__ import annotations

import pytest

from asud.errors import BadRequest
from sysup.config import DistroSettings
from sysup.upgrades.request import MissingField, UpgradeCheckRequest, parse_legacy_request, resolve_distro

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
