"""``asud fetch-imagebuilder``: warms the cache from the download server, and says what is wrong otherwise
(ported from tests/imagebuilders/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

from tests.scripts.support import Run, asud, write_config
from tests.support.upstream import DemoTree


def _run(config: Path, *args: str) -> Run:
    return asud("fetch-imagebuilder", *args, "--config", str(config), timeout=120)


def test_fetches_verifies_and_unpacks_into_the_cache(tmp_path: Path, demo_tree: DemoTree) -> None:
    config = write_config(tmp_path / "asud.toml", *demo_tree)
    done = _run(config, "24.10.5", "ath79/generic")
    assert done.returncode == 0, done.stderr
    unpacked = Path(done.stdout.strip())
    assert (unpacked / "Makefile").is_file() and (unpacked / ".targetinfo.json").is_file()
    assert unpacked.is_relative_to(tmp_path / "data" / "imagebuilders")
    again = _run(config, "24.10.5", "ath79/generic")  # cached: the same directory
    assert again.returncode == 0 and again.stdout.strip() == str(unpacked)


def test_unknown_version_and_target_are_explained(tmp_path: Path, demo_tree: DemoTree) -> None:
    config = write_config(tmp_path / "asud.toml", *demo_tree)
    unknown = _run(config, "99.01.0", "ath79/generic")
    assert unknown.returncode == 1 and "asud sync" in unknown.stderr
    assert "openwrt 99.01.0 is not in the catalog" in unknown.stderr
    no_target = _run(config, "24.10.5", "nosuch/target")
    assert no_target.returncode == 1 and "openwrt 24.10.5 has no target 'nosuch/target'" in no_target.stderr
    no_distro = _run(config, "24.10.5", "ath79/generic", "--distro", "lede")
    assert no_distro.returncode == 1 and "unknown distribution 'lede'" in no_distro.stderr
