"""The processes a run starts: each server is its own process, so the load generator never shares its GIL.

Every child is started here with its output in a log file, dies with the bench if the bench is killed
(``PR_SET_PDEATHSIG``), and is stopped by its own pid (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["Child", "free_port", "read_rss_mb", "start_child"]

_PR_SET_PDEATHSIG = 1
# Resolved here, in the parent: between fork and exec the child only calls it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_rss_mb(pid: int) -> tuple[float, float]:
    """``(current, peak)`` resident memory of ``pid`` in MB (``VmRSS``, ``VmHWM`` of /proc/PID/status)."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0.0, 0.0
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in values:
            values[name] = int(rest.split()[0]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


class Child:
    """A started child process writing to ``log``; ``started_at`` is its ``time.time()`` at spawn."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, started_at: float) -> None:
        self.process = process
        self.log = log
        self.started_at = started_at

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def wait_for(
        self, found: Callable[[str], re.Match[str] | bool | None], *, timeout: float, what: str
    ) -> re.Match[str] | bool:
        """Poll the log until ``found(text)`` is truthy; an exit or the timeout is an error."""
        deadline = time.monotonic() + timeout
        while True:
            result = found(self.log_text())
            if result:
                return result
            if not self.running():
                raise RuntimeError(f"{what} exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{what} not ready within {timeout:.0f} s; see {self.log}")
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a clean stop), SIGKILL if it is still there after ``timeout``; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_child(
    argv: Sequence[str], *, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Child:
    """Start ``argv`` with stdout and stderr into ``log`` (a file: nobody has to drain a pipe)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ASUD_")}
    environ.update(env or {})
    started_at = time.time()
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
    return Child(process, log, started_at)
