"""Workspaces are cheap (hard links) yet a build cannot change the cached ImageBuilder.

Ported from sysup's tests/imagebuilders/test_workspace.py (same assertions)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted

from asud.build.sandbox import find_sandbox
from asud.build.workspace import REWRITTEN_FILES, create_workspace, make_workspace, remove_stale_workspaces
from tests.support.requirements import require_executable


@pytest.fixture
def ib_dir(tmp_path: Path) -> Path:
    ib = tmp_path / "cache" / "ib"
    (ib / "scripts").mkdir(parents=True)
    (ib / "packages").mkdir()
    (ib / "keys").mkdir()
    (ib / "Makefile").write_text("all:\n\t@true\n")
    (ib / "scripts" / "tool.py").write_text("print('hi')\n")
    (ib / "repositories.conf").write_text("src/gz core http://example.invalid/core\n")
    (ib / "packages" / "Packages").write_text("")
    (ib / "packages" / "kernel_1_x86_64.ipk").write_bytes(b"ipk")
    (ib / "keys" / "0123456789abcdef").write_text("untrusted comment: k\nRWQ\n")
    os.symlink("scripts/tool.py", ib / "tool-link")
    os.symlink("scripts", ib / "scripts-link")
    for path in ib.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o444)  # as the cache leaves them
    return ib


@pytest_twisted.ensureDeferred
async def test_files_are_hard_links_except_rewritten_ones(ib_dir: Path, tmp_path: Path) -> None:
    with await make_workspace(ib_dir, tmp_path / "workspaces") as ws:
        assert ws.path.parent == tmp_path / "workspaces"
        for rel in ("Makefile", "scripts/tool.py", "packages/kernel_1_x86_64.ipk", "keys/0123456789abcdef"):
            assert os.stat(ws.path / rel).st_ino == os.stat(ib_dir / rel).st_ino, rel
        for rel in ("repositories.conf", "packages/Packages"):
            assert rel in REWRITTEN_FILES
            assert os.stat(ws.path / rel).st_ino != os.stat(ib_dir / rel).st_ino
            assert os.stat(ws.path / rel).st_mode & stat.S_IWUSR
        assert os.readlink(ws.path / "tool-link") == "scripts/tool.py"
        assert os.readlink(ws.path / "scripts-link") == "scripts"
        assert (ws.path / "scripts").is_dir() and not (ws.path / "scripts").is_symlink()
        (ws.path / "repositories.conf").write_text("src core file:///local\n")
        (ws.path / "scripts" / "new").write_text("new")
    assert not ws.path.exists()
    assert (ib_dir / "repositories.conf").read_text().startswith("src/gz core http://")
    assert not (ib_dir / "scripts" / "new").exists()


def test_two_workspaces_are_independent(ib_dir: Path, tmp_path: Path) -> None:
    first = create_workspace(ib_dir, tmp_path / "ws")
    second = create_workspace(ib_dir, tmp_path / "ws")
    try:
        assert first.path != second.path
        (first.path / "Makefile").unlink()
        (first.path / "packages" / "Packages").write_text("changed")
        assert (second.path / "Makefile").exists()
        assert (second.path / "packages" / "Packages").read_text() == ""
    finally:
        first.cleanup()
        second.cleanup()
        first.cleanup()  # twice is fine


@pytest_twisted.ensureDeferred
async def test_cleanup_copes_with_read_only_directories(ib_dir: Path, tmp_path: Path) -> None:
    ws = await make_workspace(ib_dir, tmp_path / "ws")
    locked = ws.path / "build_dir" / "locked"
    locked.mkdir(parents=True)
    (locked / "f").write_text("x")
    locked.chmod(0o555)
    await ws.remove()
    assert not ws.path.exists()


@pytest_twisted.ensureDeferred
async def test_a_sandboxed_build_cannot_change_the_cache_through_a_link(ib_dir: Path, tmp_path: Path) -> None:
    require_executable("bwrap", "bubblewrap")
    sandbox = find_sandbox("bwrap")
    with await make_workspace(ib_dir, tmp_path / "ws") as ws:
        script = (
            "echo evil >> Makefile; echo append=$?; "
            "sed -i s/true/false/ scripts/tool.py; echo sed=$?; "
            "echo fine > repositories.conf; echo copy=$?"
        )
        result = await sandbox.run(
            ["sh", "-c", script], workdir=ws.path, writable=[ws.path], env={}, timeout=30, output_limit=65536
        )
        assert "append=1" in result.stdout or "append=2" in result.stdout, result.stdout
        assert "sed=0" in result.stdout and "copy=0" in result.stdout
        assert (ib_dir / "Makefile").read_text() == "all:\n\t@true\n"
        assert (ib_dir / "scripts" / "tool.py").read_text() == "print('hi')\n"
        assert (ws.path / "repositories.conf").read_text() == "fine\n"


_HOLD_A_WORKSPACE = """
import sys, time
from pathlib import Path
from asud.build.workspace import create_workspace
workspace = create_workspace(Path(sys.argv[1]), Path(sys.argv[2]))
print(workspace.path, flush=True)
time.sleep(600)
"""


def _daemon_holding_a_workspace(ib_dir: Path, root: Path) -> tuple[subprocess.Popen[str], Path]:
    """Another process (a daemon mid-build, as far as the workspace can tell) and the workspace it made."""
    child = subprocess.Popen([sys.executable, "-c", _HOLD_A_WORKSPACE, str(ib_dir), str(root)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_a_killed_daemons_workspaces_are_removed_and_live_ones_kept(ib_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "workspaces"
    killed, killed_path = _daemon_holding_a_workspace(ib_dir, root)
    alive, alive_path = _daemon_holding_a_workspace(ib_dir, root)
    try:
        ours = create_workspace(ib_dir, root)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        (killed_path / "build_dir" / "locked").mkdir(parents=True)  # what a build leaves, read-only too
        (killed_path / "build_dir" / "locked").chmod(0o555)
        older = root / "ws-from-an-older-asud"  # made before workspaces had lock files
        (older / "scripts").mkdir(parents=True)
        assert killed_path.is_dir() and (root / f"{killed_path.name}.lock").exists()

        assert remove_stale_workspaces(root) == 2
        assert not killed_path.exists() and not (root / f"{killed_path.name}.lock").exists()
        assert not older.exists()
        for live in (alive_path, ours.path):  # another daemon's and this process's: untouched
            assert (live / "Makefile").read_text() == "all:\n\t@true\n"
            assert (root / f"{live.name}.lock").exists()
        assert remove_stale_workspaces(root) == 0
        ours.cleanup()
    finally:
        for child in (killed, alive):
            child.kill()
            child.wait(timeout=10)
    left = sorted(path.name for path in root.iterdir())
    assert left == sorted([alive_path.name, f"{alive_path.name}.lock"])
    assert remove_stale_workspaces(root) == 1  # that daemon is gone now too
    assert list(root.iterdir()) == []
    assert remove_stale_workspaces(tmp_path / "never-made") == 0
