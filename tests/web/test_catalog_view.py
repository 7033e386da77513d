"""The catalog as the pages show it, read from the real catalog of the synced demo upstream."""

from __future__ import annotations

from typing import Any

from sysup.web.catalog_view import (
    branch_summaries,
    device_details,
    device_index,
    stock_image_url,
    version_choices,
)


def test_version_choices_put_stable_releases_first(api_state: Any) -> None:
    choices = version_choices(api_state.catalog, "openwrt")
    assert [(c.version, c.kind) for c in choices] == [
        ("25.12.1", "stable"),
        ("24.10.5", "stable"),
        ("23.05.5", "stable"),
        ("24.10.4", "release"),
        ("SNAPSHOT", "snapshot"),
    ]
    assert choices[-1].snapshot and "snapshot" in choices[-1].label
    assert version_choices(api_state.catalog, "nowhere") == []


def test_device_index_covers_every_target_of_the_version(api_state: Any) -> None:
    index = device_index(api_state.catalog, "openwrt", "25.12.1")
    assert {device.target for device in index.devices} == {"ath79/generic", "mediatek/filogic", "x86/64"}
    assert index.get("ath79/generic", "tplink_tl-wr842n-v3") is not None
    assert len(device_index(api_state.catalog, "openwrt", "1.0")) == 0


def test_device_details_and_size_limit(api_state: Any) -> None:
    details = device_details(
        api_state.catalog, "openwrt", "25.12.1", "ath79/generic", "tplink_tl-wr842n-v3", upstream_url="http://up"
    )
    assert details is not None
    assert details["title"] == "TP-Link TL-WR842N v3"
    assert details["image_size_limit"] == 640 * 1024  # profiles.json of 25.12 carries file_size_limits
    assert details["images"][0]["url"].startswith("http://up/releases/25.12.1/targets/ath79/generic/")
    catalog = api_state.catalog
    assert device_details(catalog, "openwrt", "25.12.1", "ath79/generic", "nope", upstream_url="") is None
    assert device_details(catalog, "openwrt", "0.1", "x86/64", "generic", upstream_url="") is None


def test_stock_image_url_and_branch_summaries(api_state: Any) -> None:
    url = stock_image_url("http://up/", "/snapshots/", "x86/64", "a.img.gz")
    assert url == "http://up/snapshots/targets/x86/64/a.img.gz"
    summaries = {summary.name: summary for summary in branch_summaries(api_state.catalog, "openwrt")}
    assert summaries["24.10"].versions == ["24.10.5", "24.10.4"]
    assert summaries["SNAPSHOT"].snapshot and "x86/64" in summaries["SNAPSHOT"].targets
