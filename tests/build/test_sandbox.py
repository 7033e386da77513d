"""The bwrap sandbox really isolates: no network, no writes outside the workspace, no host PIDs, limits.

Ported from sysup's tests/imagebuilders/test_sandbox.py; the runs go through ``reactor.spawnProcess``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted

from asud.build.process import ProcessResult
from asud.build.sandbox import NO_SANDBOX_WARNING, BwrapSandbox, NoSandbox, find_sandbox
from asud.errors import SandboxError
from tests.build.fake_reactor import FakeProcessReactor
from tests.support.requirements import require_executable

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def bwrap() -> BwrapSandbox:
    require_executable("bwrap", "bubblewrap")
    sandbox = find_sandbox("bwrap", kill_grace=1)
    assert isinstance(sandbox, BwrapSandbox)
    return sandbox


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def py(code: str) -> list[str]:
    return ["python3", "-c", code]


CONNECT = (
    "import socket, sys\n"
    "s = socket.socket(); s.settimeout(3)\n"
    "try:\n    s.connect(('127.0.0.1', int(sys.argv[1])))\nexcept OSError as e:\n    print('refused', e)\n"
    "else:\n    print('connected')\n"
)


@pytest_twisted.ensureDeferred
async def test_check_passes(bwrap: BwrapSandbox) -> None:
    await bwrap.check()


@pytest_twisted.ensureDeferred
async def test_no_network(bwrap: BwrapSandbox, workspace: Path, listener: int) -> None:
    result = await bwrap.run(
        [*py(CONNECT), str(listener)],
        workdir=workspace,
        writable=[workspace],
        env={},
        timeout=30,
        output_limit=LIMIT,
    )
    assert result.ok, result.stderr
    assert result.stdout.startswith("refused")


@pytest_twisted.ensureDeferred
async def test_without_sandbox_the_same_probe_connects(workspace: Path, listener: int) -> None:
    lines: list[tuple[str, str]] = []
    result = await NoSandbox(kill_grace=1).run(
        [*py(CONNECT), str(listener)],
        workdir=workspace,
        writable=[workspace],
        env={},
        timeout=30,
        output_limit=LIMIT,
        step="probe",
        on_line=lambda step, text: lines.append((step, text)),
    )
    assert result.stdout.startswith("connected")
    assert result.stderr.startswith(NO_SANDBOX_WARNING)
    assert lines[0] == ("probe", NO_SANDBOX_WARNING.strip())  # the log says so too


WRITE = (
    "import sys\n"
    "for path in sys.argv[1:]:\n"
    "    try:\n        open(path, 'w').write('x')\n"
    "    except OSError as e:\n        print('denied', path, type(e).__name__)\n"
    "    else:\n        print('wrote', path)\n"
)


@pytest_twisted.ensureDeferred
async def test_writes_only_inside_the_workspace(bwrap: BwrapSandbox, workspace: Path, tmp_path: Path) -> None:
    cache = tmp_path / "ib-cache"
    cache.mkdir()
    (cache / "Makefile").write_text("original")
    elsewhere = tmp_path / "not-mounted"
    elsewhere.mkdir()
    home = Path(os.path.expanduser("~")) / "asud-sandbox-probe"
    targets = [
        workspace / "ok",
        cache / "Makefile",
        cache / "new",
        elsewhere / "x",
        home,
        Path("/usr/probe"),
        Path("/etc/probe"),
        Path("/probe"),
    ]
    result = await bwrap.run(
        [*py(WRITE), *map(str, targets)],
        workdir=workspace,
        writable=[workspace],
        readonly=[cache],
        env={},
        timeout=30,
        output_limit=LIMIT,
    )
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"wrote {workspace / 'ok'}"
    assert all(line.startswith("denied") for line in lines[1:]), lines
    assert (workspace / "ok").read_text() == "x"
    assert (cache / "Makefile").read_text() == "original"
    assert not (cache / "new").exists() and not (elsewhere / "x").exists() and not home.exists()


@pytest_twisted.ensureDeferred
async def test_readonly_file_stays_readonly_even_for_root(bwrap: BwrapSandbox, workspace: Path) -> None:
    protected = workspace / "protected"
    protected.write_text("keep")
    protected.chmod(0o444)
    result = await bwrap.run(
        [*py(WRITE), str(protected)],
        workdir=workspace,
        writable=[workspace],
        env={},
        timeout=30,
        output_limit=LIMIT,
    )
    assert result.stdout.startswith("denied"), result.stdout
    assert protected.read_text() == "keep"


@pytest_twisted.ensureDeferred
async def test_cannot_see_host_processes(bwrap: BwrapSandbox, workspace: Path) -> None:
    code = "import os; print(' '.join(p for p in os.listdir('/proc') if p.isdigit()))"
    result = await bwrap.run(
        py(code), workdir=workspace, writable=[workspace], env={}, timeout=30, output_limit=LIMIT
    )
    assert result.ok, result.stderr
    pids = {int(p) for p in result.stdout.split()}
    assert pids and max(pids) < 10
    assert os.getpid() not in pids or os.getpid() < 10


@pytest_twisted.ensureDeferred
async def test_environment_is_cleared(bwrap: BwrapSandbox, workspace: Path) -> None:
    os.environ["ASUD_TEST_SECRET"] = "leak"
    try:
        result = await bwrap.run(
            ["env"],
            workdir=workspace,
            writable=[workspace],
            env={"SOURCE_DATE_EPOCH": "42"},
            timeout=30,
            output_limit=LIMIT,
        )
    finally:
        del os.environ["ASUD_TEST_SECRET"]
    env = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert "ASUD_TEST_SECRET" not in env
    assert env["SOURCE_DATE_EPOCH"] == "42" and env["LANG"] == "C" and env["TMPDIR"] == "/tmp"
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SOURCE_DATE_EPOCH", "PWD"}


@pytest_twisted.ensureDeferred
async def test_timeout_kills_the_command(bwrap: BwrapSandbox, workspace: Path) -> None:
    result = await bwrap.run(
        ["sh", "-c", "sleep 30 & sleep 30"],
        workdir=workspace,
        writable=[workspace],
        env={},
        timeout=1,
        output_limit=LIMIT,
    )
    assert result.timed_out and not result.ok
    assert result.duration < 10


@pytest_twisted.ensureDeferred
async def test_cancel_kills_the_whole_tree(bwrap: BwrapSandbox, workspace: Path) -> None:
    from twisted.internet import reactor

    marker = workspace / "still-running"
    script = f"(sleep 3; touch {marker}) & sleep 30"
    deferred = bwrap.run(["sh", "-c", script], workdir=workspace, writable=[workspace], env={}, timeout=60,
                         output_limit=LIMIT)
    reactor.callLater(0.5, deferred.cancel)  # type: ignore[attr-defined]
    with pytest.raises(Exception) as caught:
        await deferred
    assert type(caught.value).__name__ == "CancelledError"
    await _sleep(3.5)
    assert not marker.exists()  # the background job died with the sandbox


@pytest_twisted.ensureDeferred
async def test_output_flood_is_cut(bwrap: BwrapSandbox, workspace: Path) -> None:
    result = await bwrap.run(
        ["yes", "flood"], workdir=workspace, writable=[workspace], env={}, timeout=30, output_limit=100_000
    )
    assert result.output_truncated and not result.ok
    assert len(result.stdout) + len(result.stderr) <= 100_000
    assert result.duration < 10


@pytest_twisted.ensureDeferred
async def test_make_and_tools_work_inside(bwrap: BwrapSandbox, workspace: Path) -> None:
    (workspace / "Makefile").write_text("all:\n\t@echo made $$(python3 -c 'print(6*7)')\n")
    result = await bwrap.run(
        ["make", "-s"], workdir=workspace, writable=[workspace], env={}, timeout=30, output_limit=LIMIT
    )
    assert result.ok, result.stderr
    assert result.stdout.strip() == "made 42"


def test_missing_bwrap_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError, match="bubblewrap"):
        find_sandbox("bwrap")
    assert isinstance(find_sandbox("none"), NoSandbox)


@pytest_twisted.ensureDeferred
async def test_no_sandbox_timeout_kills_process_group(workspace: Path) -> None:
    result = await NoSandbox(kill_grace=1).run(
        ["sh", "-c", "sleep 30 & sleep 30"],
        workdir=workspace,
        writable=[workspace],
        env={},
        timeout=1,
        output_limit=LIMIT,
    )
    assert result.timed_out
    assert result.duration < 10
    assert sys.platform.startswith("linux")


def test_bwrap_argv_as_built(tmp_path: Path) -> None:
    """The exact command: namespaces, read-only system, only the given paths writable, env cleared."""
    reactor = FakeProcessReactor()
    sandbox = BwrapSandbox("/usr/bin/bwrap", reactor=reactor, kill_grace=3)
    ws, ro = tmp_path / "ws", tmp_path / "feeds"
    deferred = sandbox.run(["make", "info"], workdir=ws, writable=[ws], readonly=[ro],
                           env={"SOURCE_DATE_EPOCH": "1"}, timeout=10, output_limit=100, step="make info")
    [child] = reactor.spawned
    argv = child.argv
    assert argv[:9] == ["/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                        "--cap-drop", "ALL", "--hostname", "asud-build", *argv[8:9]]
    assert argv[argv.index("--") + 1 :] == ["make", "info"]
    bind = argv.index("--bind")
    assert argv[bind : bind + 3] == ["--bind", str(ws), str(ws)]
    assert argv[bind + 3 : bind + 6] == ["--ro-bind", str(ro), str(ro)]
    assert ["--remount-ro", "/", "--chdir", str(ws), "--clearenv"] == argv[bind + 6 : bind + 11]
    assert "--share-net" not in argv
    assert child.env == {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"}
    assert child.path is None and child.uid is None
    reactor.advance(10)
    assert child.signals == ["TERM"]
    reactor.advance(3)
    assert child.signals == ["TERM", "KILL"]
    child.exit(signal="KILL")
    results: list[ProcessResult] = []
    deferred.addCallback(results.append)
    assert results[0].timed_out


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]
