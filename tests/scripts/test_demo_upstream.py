"""``asud demo-upstream build``: the generator behind a command (serving is the demo_tree fixture's job
and tests/demo/test_server.py's)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts.support import asud


def test_build_writes_a_tree_with_the_given_url_and_seed(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    result = asud("demo-upstream", "build", str(tree), "--seed", "3", "--no-imagebuilders",
                  "--base-url", "http://127.0.0.1:9999")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Demo upstream in {tree}" in result.stdout
    assert "24.10.5: 3 targets" in result.stdout
    assert json.loads((tree / ".versions.json").read_text())["stable_version"] == "25.12.1"
    assert not list(tree.rglob("openwrt-imagebuilder-*"))
    (key,) = (tree / "keys").glob("*.pub")
    assert key.stem in result.stdout

    # a second build replaces the tree; a directory that is not a tree is refused
    assert asud("demo-upstream", "build", str(tree), "--no-imagebuilders").returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    refused = asud("demo-upstream", "build", str(other), "--no-imagebuilders")
    assert refused.returncode != 0 and "refusing to replace it" in refused.stderr
    assert (other / "precious.txt").read_text() == "keep me"
