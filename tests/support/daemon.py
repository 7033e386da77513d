"""The real daemon as a child process: ``twist asud --config FILE``, as systemd and ``make demo`` run it.

Use it where a test needs a server that answers while the test itself blocks (router clients in BusyBox,
load generators), or where the process is the thing under test (signals, ``kill -9``, several daemons on
one Redis). ``DaemonProcess.start()`` returns once the daemon logged "asud started"; ``url`` is its first
listening address. Settings are written to a TOML file beside the data directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from asud.config import to_toml
from tests.support.upstream import DemoTree

__all__ = ["DaemonProcess", "HttpAnswer", "daemon_settings", "http_call"]

START_TIMEOUT = 60.0
_LISTENING = re.compile(r"asud listening on \S+ \(IPv4Address\(type='TCP', host='([\d.]+)', port=(\d+)\)\)")
_STARTED = "asud started"


def daemon_settings(tree: DemoTree, data_dir: Path, **sections: Any) -> dict[str, Any]:
    """Settings for a daemon on the demo upstream, listening on a free port of 127.0.0.1.

    ``sections`` are merged into the defaults (``build={"workers": 2}``, ``redis={"url": …}``).
    """
    info, url = tree
    settings: dict[str, Any] = {
        "data_dir": str(data_dir),
        "http": {"listen": ["tcp:0:interface=127.0.0.1"]},
        "build": {"workers": 1},
        "distros": {"openwrt": {"upstream_url": url, "public_keys": [info.public_key_text]}},
    }
    for name, section in sections.items():
        if isinstance(section, Mapping) and isinstance(settings.get(name), dict):
            settings[name] = {**settings[name], **section}
        else:
            settings[name] = section
    return settings


class DaemonProcess:
    """One ``twist asud`` child; ``url`` (``http://127.0.0.1:PORT``) once started."""

    def __init__(self, directory: Path, settings: Mapping[str, Any],
                 env: Mapping[str, str] | None = None, prefix: Sequence[str] = ()) -> None:
        self.directory = directory
        #: A command the daemon runs under (``setpriv …`` to emulate a unit's restrictions).
        self.prefix = list(prefix)
        self.config_path = directory / "asud.toml"
        self.log_path = directory / "asud.log"
        self.settings = settings
        self.env = env or {}
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = START_TIMEOUT) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(to_toml(self.settings))
        command = [*self.prefix, sys.executable, "-m", "twisted", "--log-format=text", "asud", "--config",
                   str(self.config_path)]
        environ = {key: item for key, item in os.environ.items() if not key.startswith("ASUD_")}
        environ.update(self.env)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, env=environ, cwd=self.directory)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text(offset)
            if _STARTED in text:
                found = _LISTENING.search(text)
                self.url = f"http://{found.group(1)}:{found.group(2)}" if found else ""
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"asud did not start:\n{self.log_text(offset)[-4000:]}")

    def log_text(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, number)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (systemd's stop) and wait; the exit status (negative: killed by that signal)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def wait(self, timeout: float = 60.0) -> int | None:
        """Wait for the process to end (after :meth:`signal`); its exit status (``None``: still running)."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """``kill -9``: no clean-up at all (its builds stay pending in the queue)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@attrs.frozen
class HttpAnswer:
    """One answer of :func:`http_call`: status, headers (case-insensitive names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)


def http_call(url: str, body: Any = None, *, method: str | None = None, timeout: float = 30.0) -> HttpAnswer:
    """A blocking request (JSON ``body`` → POST) for tests that talk to a daemon from their own thread;
    an error status is an answer, not an exception (a refused connection raises ``OSError``)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return HttpAnswer(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, dict(error.headers), error.read())
