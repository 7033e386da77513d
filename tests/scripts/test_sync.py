"""``asud sync`` against the demo upstream: what it found, what it skipped, and every problem with its URL
(issue 11 item 9: a release below ``min_branch`` and a package index without a signature are said, and a
version with 0 packages is a problem, not a success)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.scripts.support import asud, write_config
from tests.support.upstream import DemoTree


def test_sync_reports_versions_targets_and_packages(demo_tree: DemoTree, tmp_path: Path) -> None:
    config = write_config(tmp_path / "asud.toml", demo_tree[0], demo_tree[1])
    result = asud("sync", "--config", str(config), "--distro", "openwrt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("openwrt: 5 versions, 15 targets (15 changed), 65 profiles;")
    assert f"from {demo_tree[1]}" in lines[0]
    assert any(line.strip().startswith("24.10.5: 3 targets") and "packages" in line for line in lines)
    assert "PROBLEM" not in result.stdout
    # the second run is answered from the on-disk cache: the server says 304 for everything it has
    again = asud("sync", "--config", str(config))
    assert again.returncode == 0
    assert " 0 not modified" not in again.stdout.splitlines()[0]

    unknown = asud("sync", "--config", str(config), "--distro", "nope")
    assert unknown.returncode == 1 and "unknown distribution 'nope' (configured: openwrt)" in unknown.stderr


def test_skipped_releases_and_unsigned_indexes_are_said_with_their_url(
    demo_tree: DemoTree, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(demo_tree[0].root, tree)
    for signature in (tree / "releases" / "24.10.5").rglob("Packages.sig"):
        signature.unlink()
    config = write_config(tmp_path / "asud.toml", demo_tree[0], tree.as_uri(), distro='min_branch = "24.10"')
    result = asud("sync", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"23.05.5: skipped, below min_branch 24.10 ({tree.as_uri()}/releases/23.05.5/)" in out
    assert "24.10.5: 3 targets (3 changed), 13 profiles, 0 packages — PROBLEM" in out
    unsigned = f"{tree.as_uri()}/releases/24.10.5/targets/ath79/generic/packages/Packages has no signature"
    assert any(line.strip().startswith("PROBLEM:") and unsigned in line for line in out.splitlines())
    assert (
        "24.10.4: 3 targets" in out and "24.10.4: 3 targets (3 changed), 13 profiles, 0 packages" not in out
    )
