"""Real processes for the scale-out fault tests: our own Redis, a pausable TCP proxy in front of PostgreSQL,
and ``sysup serve --no-worker`` / ``sysup worker`` subprocesses sharing one ``sysup.toml``.

Nothing here touches the machine's shared Redis (6379) or stops the shared PostgreSQL: each test starts its
own ``redis-server`` on a free port, and "PostgreSQL down" is the proxy refusing and cutting connections.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

SYSUP = Path(sys.executable).with_name("sysup")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """``redis-server --save ""`` on its own port; ``restart()`` keeps the port (and loses the data)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "redis-server to accept connections")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


class PausableProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target``. ``pause()`` cuts every open connection and refuses
    new ones (what clients see when a database host goes away); ``resume()`` accepts again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._paused = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()  # type: ignore[union-attr]
            except (TimeoutError, OSError):
                continue
            if self._paused.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        self._paused.set()
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._open.clear()

    def resume(self) -> None:
        self._paused.clear()

    def close(self) -> None:
        self._closing.set()
        self.pause()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()


def write_config(path: Path, values: dict[str, Any], distro: dict[str, Any]) -> Path:
    """A ``sysup.toml`` with ``values`` at the top level and ``[distros.openwrt]`` = ``distro``."""

    def toml_value(value: Any) -> str:
        return json.dumps(value)  # strings, numbers, booleans and lists of strings are the same in TOML

    lines = [f"{key} = {toml_value(value)}" for key, value in values.items()]
    lines.append("[distros.openwrt]")
    lines += [f"{key} = {toml_value(value)}" for key, value in distro.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class SysupProcess:
    """One ``sysup`` subprocess (its output goes to a log file beside the config)."""

    def __init__(self, name: str, argv: list[str], config: Path, *, port: int | None = None) -> None:
        self.name, self.argv, self.config, self.port = name, argv, config, port
        self.log_path = config.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> SysupProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("SYSUP_")}
        env["SYSUP_CONFIG"] = str(self.config)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([str(SYSUP), *self.argv], env=env, stdout=log, stderr=log,
                                        cwd=self.config.parent)
        log.close()
        if self.port is not None:
            wait_for(self._ready, 60, f"{self.name} to answer on port {self.port}", interval=0.2)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/json/v1/overview.json", timeout=2).status_code < 600
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """``kill -9``: no cleanup, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """A normal stop (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def api(config: Path, name: str = "api") -> SysupProcess:
    port = free_port()
    return SysupProcess(name, ["serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)], config,
                        port=port)


def worker(config: Path, name: str = "worker", threads: int = 1) -> SysupProcess:
    return SysupProcess(name, ["worker", "--workers", str(threads)], config)
