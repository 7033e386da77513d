"""Normalisation: what a client sent → what the server builds."""

from __future__ import annotations

from asud.build.normalise import diff_packages, normalise_request
from asud.build.request import parse_build_request

BASE = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5"}


def test_diff_packages_removes_unrequested_defaults() -> None:
    assert diff_packages(["luci", "dropbear"], ["dropbear", "ppp", "kmod-ath9k"]) == [
        "luci", "dropbear", "-kmod-ath9k", "-ppp",
    ]
    assert diff_packages(["luci", "-ppp"], ["ppp"]) == ["luci", "-ppp"]


def test_profile_commas_become_underscores() -> None:
    request = normalise_request(parse_build_request(BASE))
    assert request.profile == "tplink_archer-c7-v5"
    assert parse_build_request(BASE).profile == "tplink,archer-c7-v5"  # the original is left alone


def test_package_list_is_unique_without_plus_and_versions_keys_win() -> None:
    request = normalise_request(parse_build_request({**BASE, "packages": ["+luci", "htop", "luci", "-ppp"]}))
    assert request.packages == ["luci", "htop", "-ppp"]
    both = normalise_request(parse_build_request(
        {**BASE, "packages": ["vim"], "packages_versions": {"luci": "1", "htop": "2"}}))
    assert both.packages == ["luci", "htop"]
    assert both.packages_versions == {"luci": "1", "htop": "2"}
