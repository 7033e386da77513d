"""What a load says: releases left out (with their URL), indexes that cannot be used, versions with no
package — each a line of ``asud sync``'s output and of the daemon's log, never silence (issue 11, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from asud.catalog.report import SkippedRelease
from asud.errors import SignatureError
from tests.catalog.helpers import load_demo
from tests.support.upstream import DemoTree


@pytest_twisted.ensureDeferred
async def test_a_clean_load_reads_as_one_line_per_version(demo_tree: DemoTree) -> None:
    _, report = await load_demo(demo_tree, feeds=True)
    lines = report.lines()
    url = demo_tree[1]
    assert lines[0].startswith("openwrt: 5 versions, 15 targets (15 changed), ")
    assert lines[0].endswith(f"MB from {url}")
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "25.12.1", "24.10.5", "24.10.4", "23.05.5", "SNAPSHOT",
    ]
    assert all(" packages" in line and "PROBLEM" not in line for line in lines[1:])
    assert report.problems == []


@pytest_twisted.ensureDeferred
async def test_a_release_below_min_branch_is_said_with_its_url(demo_tree: DemoTree) -> None:
    url = demo_tree[1]
    catalog, report = await load_demo(demo_tree, distros={"openwrt": {"min_branch": "24.10"}})
    assert report.ok  # configured on purpose: said, not a problem
    openwrt = report.distro("openwrt")
    assert openwrt is not None
    assert openwrt.skipped == [
        SkippedRelease("23.05.5", f"{url}/releases/23.05.5/", "below min_branch 24.10"),
    ]
    assert f"  23.05.5: skipped, below min_branch 24.10 ({url}/releases/23.05.5/)" in report.lines()
    assert catalog.version("openwrt", "23.05.5") is None and catalog.version("openwrt", "24.10.4")
    _, only = await load_demo(demo_tree, distros={"openwrt": {"branches": ["24.10"], "snapshots": False}})
    reasons = {skip.version: skip.reason for skip in only.distros[0].skipped}
    assert reasons == {
        "25.12.1": "branch 25.12 is not among the configured branches",
        "23.05.5": "branch 23.05 is not among the configured branches",
    }


@pytest_twisted.ensureDeferred
async def test_an_index_without_signature_is_a_problem_with_its_url(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    (root / "releases/24.10.4/packages/mips_24kc/luci/Packages.sig").unlink()
    index_url = f"{url}/releases/24.10.4/packages/mips_24kc/luci/Packages"
    expected = (
        f"{index_url} has no signature ({index_url}.sig is not on the server); its packages are not used"
    )

    # The daemon: the feed is refused when first used, with the URL.
    catalog, report = await load_demo(demo_tree, url=url)
    assert report.ok
    try:
        await catalog.package_index("openwrt", "24.10.4", "ath79/generic")
    except SignatureError as error:
        assert error.detail == expected
    else:
        raise AssertionError("an unsigned index was used")

    # ``asud sync`` (feeds=True): the problem in the report, the other feeds still counted.
    _, report = await load_demo(demo_tree, url=url, feeds=True)
    assert report.problems == [f"openwrt: 24.10.4 packages/mips_24kc: {expected}"]
    assert f"  PROBLEM: 24.10.4 packages/mips_24kc: {expected}" in report.lines()
    version = report.distros[0].version("24.10.4")
    assert version is not None and version.packages


@pytest_twisted.ensureDeferred
async def test_a_version_with_no_usable_index_shows_zero_packages_as_a_problem(
    demo_tree: DemoTree, private_tree: tuple[Path, str]
) -> None:
    root, url = private_tree
    for signature in (root / "releases/23.05.5").rglob("Packages.sig"):
        signature.unlink()
    _, report = await load_demo(demo_tree, url=url, feeds=True)
    version = report.distros[0].version("23.05.5")
    assert version is not None and version.packages == 0
    problems = report.problems
    assert f"openwrt: 23.05.5: 0 packages — no usable package index below {url}/releases/23.05.5/" in problems
    assert sum("23.05.5" in problem and "has no signature" in problem for problem in problems) == 6
    line = (
        "  23.05.5: 3 targets (3 changed), 13 profiles, "
        "0 packages — PROBLEM: no package index could be used"
    )
    assert line in report.lines()
    assert not report.ok
