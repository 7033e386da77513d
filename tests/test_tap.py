"""The twistd plugin: found by ``twistd``/``twist`` after a normal install, with its options."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.python import usage

from asud.tap import Options

ROOT = Path(__file__).resolve().parents[1]
#: The top-level packages setup.cfg installs.
PACKAGES = ["asud", "twisted"]


def test_options_read_config_and_repeatable_listen(tmp_path: Path) -> None:
    path = tmp_path / "asud.toml"
    path.write_text('[build]\nworkers = 2\n')
    options = Options()
    options.parseOptions(["--config", str(path), "--listen", "tcp:0", "--listen", "unix:/tmp/x.sock"])
    settings = options["settings"]
    assert settings.build.workers == 2
    assert settings.http.listen == ["tcp:0", "unix:/tmp/x.sock"]


def test_bad_setting_is_a_usage_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "asud.toml"
    path.write_text('[build]\nworkers = "several"\n')
    with pytest.raises(usage.UsageError, match=r"build\.workers: expected a whole number"):
        Options().parseOptions(["--config", str(path)])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """asud installed the normal way (a wheel, not editable) into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                                   "dropin.cache"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)],
        check=True, cwd=source,
    )
    assert (target / "twisted" / "plugins" / "asud_plugin.py").is_file()
    assert not (target / "twisted" / "plugins" / "__init__.py").exists()
    for data in ("asud/http/openapi.json", "asud/http/templates/builder.html", "asud/http/static/style.css",
                 "asud/demo/imagebuilder/Makefile", "asud/demo/imagebuilder/scripts/mini-imagebuilder.py"):
        assert (target / data).is_file(), f"{data} is not installed"
    return target


def _twistd(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, "-m", "twisted", *args], capture_output=True, text=True, env=env,
                          cwd=site, timeout=120)


def test_installed_plugin_is_listed_by_twist_and_prints_its_options(installed: Path) -> None:
    listing = _twistd(installed, "--help")
    assert listing.returncode == 0, listing.stderr
    assert "asud" in listing.stdout
    options = _twistd(installed, "asud", "--help")
    assert options.returncode == 0, options.stderr
    assert "--config=" in options.stdout and "--listen=" in options.stdout
