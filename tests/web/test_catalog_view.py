"""The catalog as the pages show it, read from the in-memory catalog of the demo upstream."""

from __future__ import annotations

import pytest_twisted

from asud.http.web_catalog import (
    branch_summaries,
    device_details,
    device_index,
    stock_image_url,
    version_choices,
)
from tests.http.conftest import demo_catalog
from tests.support.upstream import DemoTree


@pytest_twisted.ensureDeferred
async def test_version_choices_put_stable_releases_first(demo_tree: DemoTree) -> None:
    catalog = await demo_catalog(demo_tree)
    choices = version_choices(catalog, "openwrt")
    assert [(c.version, c.kind) for c in choices] == [
        ("25.12.1", "stable"),
        ("24.10.5", "stable"),
        ("23.05.5", "stable"),
        ("24.10.4", "release"),
        ("SNAPSHOT", "snapshot"),
    ]
    assert choices[-1].snapshot and "snapshot" in choices[-1].label
    assert version_choices(catalog, "nowhere") == []


@pytest_twisted.ensureDeferred
async def test_device_index_covers_every_target_of_the_version(demo_tree: DemoTree) -> None:
    catalog = await demo_catalog(demo_tree)
    index = device_index(catalog, "openwrt", "25.12.1")
    assert {device.target for device in index.devices} == {"ath79/generic", "mediatek/filogic", "x86/64"}
    assert index.get("ath79/generic", "tplink_tl-wr842n-v3") is not None
    assert len(device_index(catalog, "openwrt", "1.0")) == 0


@pytest_twisted.ensureDeferred
async def test_device_details_and_size_limit(demo_tree: DemoTree) -> None:
    catalog = await demo_catalog(demo_tree)
    details = device_details(
        catalog, "openwrt", "25.12.1", "ath79/generic", "tplink_tl-wr842n-v3", upstream_url="http://up"
    )
    assert details is not None
    assert details["title"] == "TP-Link TL-WR842N v3"
    assert details["image_size_limit"] == 640 * 1024  # profiles.json of 25.12 carries file_size_limits
    assert details["images"][0]["url"].startswith("http://up/releases/25.12.1/targets/ath79/generic/")
    assert device_details(catalog, "openwrt", "25.12.1", "ath79/generic", "nope", upstream_url="") is None
    assert device_details(catalog, "openwrt", "0.1", "x86/64", "generic", upstream_url="") is None


@pytest_twisted.ensureDeferred
async def test_stock_image_url_and_branch_summaries(demo_tree: DemoTree) -> None:
    catalog = await demo_catalog(demo_tree)
    url = stock_image_url("http://up/", "/snapshots/", "x86/64", "a.img.gz")
    assert url == "http://up/snapshots/targets/x86/64/a.img.gz"
    summaries = {summary.name: summary for summary in branch_summaries(catalog, "openwrt")}
    assert summaries["24.10"].versions == ["24.10.5", "24.10.4"]
    assert summaries["SNAPSHOT"].snapshot and "x86/64" in summaries["SNAPSHOT"].targets
