"""Private ``redis-server`` processes for tests: each on its own unix socket, killable and restartable.

``redis_server`` (function scope) yields a :class:`RedisProcess`; ``url`` is ``unix:///…/redis.sock``.
Nothing here touches the machine's shared Redis on 127.0.0.1:6379.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.requirements import require_executable

__all__ = ["RedisProcess", "redis_server"]


class RedisProcess:
    """One ``redis-server`` under ``directory`` (unix socket, optional append-only file)."""

    def __init__(self, executable: str, directory: Path, *, appendonly: bool = False) -> None:
        self.executable = executable
        self.directory = directory
        self.socket_path = directory / "redis.sock"
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.executable, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--dir", str(self.directory), "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no", "--logfile", str(self.directory / "redis.log"),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"redis-server did not start under {self.directory}:\n{log}")

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(0.5)
                probe.connect(str(self.socket_path))
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop (or with ``SIGKILL``, kill) the server and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A fresh, empty ``redis-server`` for one test (skipped without one, failed under ``CI=true``)."""
    executable = require_executable("redis-server", "redis-server")
    # unix socket paths are limited to 107 bytes: keep the directory short.
    directory = Path(tmp_path_factory.mktemp("redis", numbered=True))
    server = RedisProcess(executable, directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
