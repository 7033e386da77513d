"""``sysup fetch-imagebuilder``: warms the cache from a synced catalog, and says what is wrong otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.api.conftest import make_settings, migrate_and_sync


def _config(tmp_path: Path, demo_tree: Any) -> Path:
    info, url = demo_tree
    settings = make_settings(tmp_path / "data", info, url)
    migrate_and_sync(settings)
    config = tmp_path / "sysup.toml"
    config.write_text(
        f"data_dir = {json.dumps(str(settings.data_dir))}\n"
        f"database_url = {json.dumps(settings.resolved_database_url)}\n"
        "[distros.openwrt]\n"
        f"upstream_url = {json.dumps(url)}\n"
        f"public_keys = [{json.dumps(info.public_key_text.strip().splitlines()[-1])}]\n"
    )
    return config


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sysup.cli", "fetch-imagebuilder", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_fetches_verifies_and_unpacks_into_the_cache(tmp_path: Path, demo_tree: Any) -> None:
    config = _config(tmp_path, demo_tree)
    done = _run(config, "24.10.5", "ath79/generic")
    assert done.returncode == 0, done.stderr
    unpacked = Path(done.stdout.strip())
    assert (unpacked / "Makefile").is_file() and (unpacked / ".targetinfo.json").is_file()
    assert unpacked.is_relative_to(tmp_path / "data" / "imagebuilders")
    again = _run(config, "24.10.5", "ath79/generic")  # cached: the same directory
    assert again.returncode == 0 and again.stdout.strip() == str(unpacked)


def test_unknown_version_and_target_are_explained(tmp_path: Path, demo_tree: Any) -> None:
    config = _config(tmp_path, demo_tree)
    unknown = _run(config, "99.01.0", "ath79/generic")
    assert unknown.returncode == 1 and "sysup sync" in unknown.stderr
    no_target = _run(config, "24.10.5", "nosuch/target")
    assert no_target.returncode == 1 and no_target.stderr.strip()
