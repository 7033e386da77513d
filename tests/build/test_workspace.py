"""Workspaces are cheap (hard links) yet a build cannot change the cached ImageBuilder.

Ported from sysup's tests/imagebuilders/test_workspace.py (same assertions)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import pytest_twisted

from asud.build.sandbox import find_sandbox
from asud.build.workspace import REWRITTEN_FILES, create_workspace, make_workspace
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
