"""What ``make demo`` needs from the system (issue 11 item 10): found in PATH or sbin, and when missing,
the exact ``apt-get install`` line (or, as root, the install commands)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asud.scripts import system_packages
from asud.scripts.system_packages import (
    BENCH_NEEDS,
    DEMO_NEEDS,
    Need,
    apt_line,
    ensure,
    install_commands,
    missing,
)

ROOT = Path(__file__).resolve().parents[2]
ABSENT = Need("asud-test-no-such-program", "asud-test-package", "nothing")


def test_the_demo_needs_name_their_debian_packages() -> None:
    packages = {need.program: need.package for need in DEMO_NEEDS}
    assert packages["bwrap"] == "bubblewrap" and packages["redis-server"] == "redis-server"
    assert packages["mksquashfs"] == "squashfs-tools" and packages["mke2fs"] == "e2fsprogs"
    assert packages["xz"] == "xz-utils" and packages["zstd"] == "zstd"


def test_the_bench_needs_wrk_on_top_of_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``make bench`` on a machine without wrk stops and names the package, before any build is tried."""
    assert [need.program for need in BENCH_NEEDS[: len(DEMO_NEEDS)]] == [need.program for need in DEMO_NEEDS]
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(system_packages, "_SBIN", ())
    assert "wrk" in [need.program for need in missing(BENCH_NEEDS)]
    assert "wrk" not in [need.program for need in missing(DEMO_NEEDS)]
    assert ensure(BENCH_NEEDS, install=False) == 1
    err = capsys.readouterr().err
    assert "wrk              (Debian package wrk: the load generator of make bench)" in err


def test_sbin_counts_as_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    sh = Need("sh", "dash", "a shell")
    assert missing([sh]) == [sh]
    monkeypatch.setattr(system_packages, "_SBIN", ("/bin", "/usr/bin"))
    assert missing([sh]) == []


def test_the_apt_line_and_the_root_commands() -> None:
    needs = [ABSENT, Need("other", "asud-test-package", "same package"), Need("x", "zstd", "y")]
    assert apt_line(needs) == "sudo apt-get install -y asud-test-package zstd"
    assert install_commands(needs) == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "asud-test-package", "zstd"],
    ]


def test_missing_programs_are_explained_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    assert ensure([ABSENT], install=False) == 1
    err = capsys.readouterr().err
    assert "asud-test-no-such-program" in err and "(Debian package asud-test-package: nothing)" in err
    assert "sudo apt-get install -y asud-test-package" in err
    assert ensure([Need("sh", "dash", "a shell")], install=False) == 0


def test_the_makefile_can_run_it_with_the_system_python() -> None:
    """``python3 -m asud.scripts.system_packages --venv`` before any virtualenv: standard library only."""
    code = (
        "import sys; sys.modules['twisted'] = None; sys.modules['attrs'] = None\n"
        "from asud.scripts import system_packages\n"
        "print(system_packages.apt_line(system_packages.DEMO_NEEDS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sudo apt-get install -y bubblewrap redis-server")
    usage = subprocess.run([sys.executable, "-m", "asud.scripts.system_packages", "--bogus"], cwd=ROOT,
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert usage.returncode == 2 and "usage:" in usage.stderr
