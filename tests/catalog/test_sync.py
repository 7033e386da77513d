"""``load_catalog`` against the demo upstream served over HTTP on 127.0.0.1 (twin of sysup's sync tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import pytest_twisted

from asud.catalog import Catalog
from asud.upstream.fetch import Fetcher
from tests.catalog.helpers import TreeServer, copy_tree, demo_fetcher, load_demo, replace_file
from tests.support.upstream import DemoTree

ATH79 = "releases/24.10.4/targets/ath79/generic"


def _feed_names(catalog: Catalog, version: str) -> set[tuple[str, str, str]]:
    """``(key, feed, manager)`` of every feed source of a version."""
    data = catalog.data("openwrt")
    assert data is not None
    groups = [t.feeds for t in data.versions[version].targets.values()]
    groups += [a.feeds for a in data.versions[version].arches.values()]
    return {(group.name, source.feed, group.manager) for group in groups for source in group.sources}


@pytest_twisted.ensureDeferred
async def test_load_fills_the_catalog(demo_tree: DemoTree) -> None:
    catalog, report = await load_demo(demo_tree)
    assert report.errors == [] and report.ok and report.changed
    openwrt = report.distro("openwrt")
    assert openwrt is not None
    assert len(openwrt.versions) == 5 and openwrt.targets == 15 and openwrt.targets_changed == 15
    profiles = sum(len(target.info.profiles) for version in catalog.data("openwrt").versions.values()  # type: ignore[union-attr]
                   for target in version.targets.values())
    assert openwrt.profiles == profiles > 15
    assert openwrt.bytes > 0 and openwrt.packages is None  # feeds are read on first use
    versions = {name: v.package_manager for name in catalog.data("openwrt").versions  # type: ignore[union-attr]
                if (v := catalog.version("openwrt", name)) is not None}
    assert versions == {
        "23.05.5": "opkg",
        "24.10.4": "opkg",
        "24.10.5": "opkg",
        "25.12.1": "apk",
        "SNAPSHOT": "apk",
    }
    # kmods feeds exist where profiles.json names a kernel (24.10+), not for 23.05.
    assert ("ath79/generic", "kmods", "opkg") in _feed_names(catalog, "24.10.4")
    assert not any(feed == "kmods" for _, feed, _ in _feed_names(catalog, "23.05.5"))
    assert ("mips_24kc", "luci", "opkg") in _feed_names(catalog, "24.10.4")
    assert ("x86/64", "packages", "apk") in _feed_names(catalog, "25.12.1")
    assert ("aarch64_cortex-a53", "base", "apk") in _feed_names(catalog, "SNAPSHOT")
    index = await catalog.package_index("openwrt", "24.10.4", "ath79/generic")
    assert any(name.startswith("kmod-") for name in index.versions())
    assert index.detailed and catalog.generation == 1


@pytest_twisted.ensureDeferred
async def test_load_with_feeds_reads_and_counts_every_index(demo_tree: DemoTree) -> None:
    catalog, report = await load_demo(demo_tree, feeds=True)
    assert report.errors == []
    openwrt = report.distro("openwrt")
    assert openwrt is not None and openwrt.packages is not None and openwrt.packages > 1000
    assert all(version.packages for version in openwrt.versions)
    assert "24.10.4: 3 targets (3 changed), 13 profiles, " in "\n".join(report.lines())
    # The feeds read for the count are the ones builds use: no second download on first use.
    index = await catalog.package_index("openwrt", "23.05.5", "x86/64")
    assert "luci" in index


@pytest_twisted.ensureDeferred
async def test_refresh_without_changes_sends_only_conditional_requests(demo_tree: DemoTree,
                                                                       tmp_path: Path) -> None:
    fetcher = Fetcher(timeout=10, retries=0, cache_dir=tmp_path / "cache")
    try:
        first, first_report = await load_demo(demo_tree, fetcher=fetcher)
        index = await first.package_index("openwrt", "24.10.5", "x86/64")
        second, report = await load_demo(demo_tree, fetcher=fetcher, previous=first)
    finally:
        await fetcher.close()
    assert report.errors == []
    # Unchanged signed lists stand for everything they name: one conditional request per version, target
    # and architecture, nothing parsed, and the very same catalog (and its loaded feeds) kept.
    assert 0 < report.requests < first_report.requests / 2
    assert report.not_modified == report.requests - report.distros[0].not_found > 20
    assert report.distros[0].bytes == 0 and report.distros[0].targets_changed == 0
    assert not report.changed and second is first and second.generation == 1
    assert await second.package_index("openwrt", "24.10.5", "x86/64") is index
    # A restarted daemon (new fetcher, no previous catalog) reads everything through the on-disk cache:
    # every answer a 304, nothing downloaded.
    restarted = Fetcher(timeout=10, retries=0, cache_dir=tmp_path / "cache")
    try:
        _, after_restart = await load_demo(demo_tree, fetcher=restarted)
    finally:
        await restarted.close()
    assert after_restart.errors == [] and after_restart.distros[0].bytes == 0
    assert after_restart.not_modified == after_restart.requests - after_restart.distros[0].not_found


@pytest_twisted.ensureDeferred
async def test_profiles_json_without_matching_signature_is_refused(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    profiles = root / ATH79 / "profiles.json"
    original = profiles.read_bytes()
    document = json.loads(original)
    document["version_code"] = "r99999-evil000000"
    replace_file(profiles, json.dumps(document).encode())
    catalog, report = await load_demo(demo_tree, url=url)
    assert len(report.errors) == 1
    assert "ath79/generic/profiles.json" in report.errors[0] and "sha256sums" in report.errors[0]
    assert url in report.errors[0]
    assert catalog.target("openwrt", "24.10.4", "ath79/generic") is None
    assert sorted(catalog.data("openwrt").versions["24.10.4"].targets) == ["mediatek/filogic", "x86/64"]  # type: ignore[union-attr]
    assert len(await catalog.package_index("openwrt", "24.10.4", "ath79/generic")) == 0
    # Restored upstream: the next load reads it in full and keeps it.
    replace_file(profiles, original)
    healed, healed_report = await load_demo(demo_tree, url=url, previous=catalog)
    assert healed_report.errors == [] and healed_report.distros[0].targets_changed == 1
    target = healed.target("openwrt", "24.10.4", "ath79/generic")
    assert target is not None and target.version_code == json.loads(original)["version_code"]
    assert healed.generation == catalog.generation + 1


@pytest_twisted.ensureDeferred
async def test_tampering_after_a_load_keeps_the_verified_data(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    catalog, report = await load_demo(demo_tree, url=url)
    assert report.errors == []
    replace_file(root / ATH79 / "profiles.json", b'{"profiles": {}}')
    again, report = await load_demo(demo_tree, url=url, previous=catalog)
    # The signed sha256sums did not change, so the refresh does not even read the files it lists: the
    # tampered profiles.json is never looked at, and nothing unverified is used.
    assert report.errors == [] and not report.changed and again is catalog
    assert again.profile("openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5") is not None


@pytest_twisted.ensureDeferred
async def test_rewritten_checksums_without_a_new_signature_are_refused(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    """A mirror that tampers with profiles.json and fixes up sha256sums cannot forge sha256sums.sig."""
    root, url = private_tree
    catalog, report = await load_demo(demo_tree, url=url)
    assert report.errors == []
    forged = b'{"profiles": {}}'
    replace_file(root / ATH79 / "profiles.json", forged)
    sums = root / ATH79 / "sha256sums"
    forged_line = f"{hashlib.sha256(forged).hexdigest()} *profiles.json"
    lines = [
        forged_line if line.endswith("*profiles.json") else line for line in sums.read_text().splitlines()
    ]
    replace_file(sums, ("\n".join(lines) + "\n").encode())
    again, report = await load_demo(demo_tree, url=url, previous=catalog)
    assert any("ath79/generic" in error and "sha256sums" in error for error in report.errors), report.errors
    assert not report.changed and again is catalog  # the verified data is kept as it was
    assert again.profile("openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5") is not None


@pytest_twisted.ensureDeferred
async def test_versions_and_targets_gone_upstream_are_dropped(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    versions_file = root / ".versions.json"
    targets_file = root / "releases/24.10.5/.targets.json"
    versions_original, targets_original = versions_file.read_bytes(), targets_file.read_bytes()
    catalog, report = await load_demo(demo_tree, url=url)
    assert report.errors == []
    versions = json.loads(versions_original)
    versions["versions_list"].remove("24.10.4")
    replace_file(versions_file, json.dumps(versions).encode())
    targets = json.loads(targets_original)
    del targets["mediatek/filogic"]
    replace_file(targets_file, json.dumps(targets).encode())
    catalog, report = await load_demo(demo_tree, url=url, previous=catalog)
    assert report.errors == [] and report.distros[0].gone == 2
    assert catalog.version("openwrt", "24.10.4") is None
    assert catalog.target("openwrt", "24.10.5", "mediatek/filogic") is None
    assert catalog.branches("openwrt")["24.10"].versions == ["24.10.5"]
    replace_file(versions_file, versions_original)
    replace_file(targets_file, targets_original)
    catalog, report = await load_demo(demo_tree, url=url, previous=catalog)
    assert report.errors == []
    assert catalog.version("openwrt", "24.10.4") is not None
    assert catalog.target("openwrt", "24.10.5", "mediatek/filogic") is not None


@pytest_twisted.ensureDeferred
async def test_distro_without_keys_is_refused(demo_tree: DemoTree) -> None:
    catalog, report = await load_demo(demo_tree, distros={"openwrt": {"public_keys": []}})
    assert report.requests == 0 and "public_keys" in report.errors[0]
    assert catalog.distros() == ["openwrt"] and catalog.branches("openwrt") == {}
    assert catalog.version("openwrt", "24.10.4") is None


@pytest.mark.parametrize("feeds", [False, True])
@pytest_twisted.ensureDeferred
async def test_a_fetcher_without_connections_leaves_nothing_behind(demo_tree: DemoTree, feeds: bool) -> None:
    """The helper other test packages use: a load, a feed read, and no timer or connection left."""
    catalog, report = await load_demo(demo_tree, feeds=feeds, fetcher=demo_fetcher())
    assert report.ok
    assert "libc" in await catalog.package_index("openwrt", "SNAPSHOT", "x86/64")


@pytest_twisted.ensureDeferred
async def test_an_unreachable_upstream_is_read_from_the_disk_cache_and_said(
    demo_tree: DemoTree, tmp_path: Path
) -> None:
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    server = TreeServer(root)
    url = server.start()
    fetcher = Fetcher(timeout=10, retries=0, cache_dir=tmp_path / "cache")
    try:
        before, report = await load_demo(demo_tree, url=url, fetcher=fetcher)
        assert report.ok
        assert "luci" in await before.package_index("openwrt", "24.10.4", "ath79/generic")
    finally:
        await fetcher.close()
        await server.stop()
    # The download server is gone; a restarted daemon still reads (and verifies) what it knew.
    restarted = demo_fetcher(cache_dir=tmp_path / "cache")
    after, report = await load_demo(demo_tree, url=url, fetcher=restarted)
    openwrt = report.distros[0]
    assert openwrt.stale > 20 and openwrt.bytes == 0
    assert after.fingerprint() == before.fingerprint()
    assert after.profile("openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5") is not None
    assert "luci" in await after.package_index("openwrt", "24.10.4", "ath79/generic")  # feeds used before
    unreachable = [error for error in report.errors if "could not be reached" in error]
    assert len(unreachable) == 1 and f"{url} could not be reached: {openwrt.stale} files" in unreachable[0]
    assert "ConnectError" in unreachable[0]
