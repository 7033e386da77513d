"""Session fixtures: the demo download tree, generated once and served on 127.0.0.1.

Use in a conftest (or a test module): ``from tests.support.upstream import demo_tree, demo_upstream_url``.
``demo_tree`` yields ``(TreeInfo, base_url)``; the tree's ImageBuilders point their repositories at
``base_url``. The tree is generated once per test process even when several modules import the
fixtures, and is shared: tests must treat it as read-only.

The server is asud's own (``python -m asud demo-upstream serve DIR --listen tcp:0:…``) in a **child
process**, so it answers whether or not this process's reactor is spinning: synchronous tests, tests on
the reactor and subprocesses (the miniature ImageBuilders fetch packages from it) all reach it. The child
listens first, on a free port it picks itself; the tree is then written with that URL. It is stopped when
the test process exits, and dies with it if the test process is killed (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import atexit
import ctypes
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asud.demo.generator import TreeInfo, generate_tree

__all__ = ["DemoTree", "UpstreamProcess", "demo_tree", "demo_upstream_url"]

DemoTree = tuple[TreeInfo, str]

#: How long the child may take to listen.
START_TIMEOUT = 30.0
_SERVING = re.compile(r"^serving .* at (http://\S+)$", re.MULTILINE)
_PR_SET_PDEATHSIG = 1
# Resolved here, in the parent: between fork and exec the child only calls it (no dlopen, no imports).
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process ends, however it ends."""
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class UpstreamProcess:
    """``asud demo-upstream serve ROOT`` as a child process; ``url`` once started."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "asud",
            "demo-upstream",
            "serve",
            str(self.root),
            "--listen",
            "tcp:0:interface=127.0.0.1",
        ]
        # Output to a file, not a pipe: nobody reads a pipe once the URL is known, and a full pipe blocks.
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _SERVING.search(self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the demo upstream did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# Every module that imports the fixtures registers its own copy of them, so the tree and its server are
# kept here, once per process, and stopped when the process exits.
_shared: dict[str, DemoTree] = {}
_servers: list[UpstreamProcess] = []


@atexit.register
def _stop_servers() -> None:
    for server in _servers:
        server.stop()


def _serve_demo_tree(directory: Path) -> DemoTree:
    server = UpstreamProcess(directory / "tree", directory / "server.log")
    _servers.append(server)
    url = server.start()
    info = generate_tree(server.root, seed=1, base_url=url)
    return info, url


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory: pytest.TempPathFactory) -> DemoTree:
    """The demo tree (seed 1, with ImageBuilders) and the URL it is served at."""
    if "demo" not in _shared:
        _shared["demo"] = _serve_demo_tree(tmp_path_factory.mktemp("demo-upstream"))
    return _shared["demo"]


@pytest.fixture(scope="session")
def demo_upstream_url(demo_tree: DemoTree) -> str:
    """Base URL of the served demo tree (no trailing slash)."""
    return demo_tree[1]
