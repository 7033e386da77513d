"""The system under test: one ``twist asud --config FILE`` process, as systemd and ``make demo`` run it.

The daemon logs JSON (``--log-format=json``): every event carries its ``log_time`` to the microsecond, so
the bench reads exact moments from the log — when the daemon was ready, when a catalog refresh found
nothing new — without touching the daemon's code. Each daemon runs its own ``redis-server`` under its
data directory (``[redis] url`` empty), as a single machine runs it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from asud.config import to_toml
from bench.processes import Child, free_port, read_rss_mb, start_child

__all__ = ["Daemon"]

#: How long a daemon may take to start (the real-scale catalog is the slow case).
START_TIMEOUT = 120.0
_STARTED = "asud started"


def events(text: str) -> Iterator[dict[str, Any]]:
    """The log events of a JSON log (one record per line, each after an ASCII record separator)."""
    for line in text.splitlines():
        line = line.strip("\x1e \t")
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue


class Daemon:
    """One asud daemon listening on a free port of 127.0.0.1; ``url`` once started."""

    def __init__(self, directory: Path, settings: Mapping[str, Any], *, name: str = "asud") -> None:
        self.directory = directory
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {
            **settings,
            "http": {**settings.get("http", {}), "listen": [f"tcp:{self.port}:interface=127.0.0.1"]},
        }
        self.config_path = directory / f"{name}.toml"
        self.child: Child | None = None
        #: ``time.time()`` of the spawn and of the "asud started" event.
        self.spawned_at = 0.0
        self.ready_at = 0.0

    @property
    def data_dir(self) -> Path:
        return Path(self.settings["data_dir"])

    @property
    def redis_socket(self) -> Path:
        """The unix socket of the daemon's own ``redis-server`` (``asud.store.embedded``)."""
        return self.data_dir / "redis" / "redis.sock"

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def start(self, timeout: float = START_TIMEOUT) -> Daemon:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(to_toml(self.settings), encoding="utf-8")
        argv = [
            sys.executable,
            "-m",
            "twisted",
            "--log-format=json",
            "asud",
            "--config",
            str(self.config_path),
        ]
        self.child = start_child(argv, log=self.directory / f"{self.name}.log", cwd=self.directory)
        self.spawned_at = self.child.started_at
        self.child.wait_for(lambda text: _STARTED in text, timeout=timeout, what=f"asud ({self.name})")
        started = self.find_event(_STARTED)
        self.ready_at = float(started["log_time"]) if started else self.spawned_at
        return self

    def events(self) -> list[dict[str, Any]]:
        return list(events(self.child.log_text())) if self.child else []

    def find_event(self, log_format: str, after: float = 0.0) -> dict[str, Any] | None:
        """The first event whose ``log_format`` starts with ``log_format``, logged after ``after``."""
        for event in self.events():
            if str(event.get("log_format", "")).startswith(log_format) and event.get("log_time", 0) > after:
                return event
        return None

    def rss_mb(self) -> tuple[float, float]:
        """``(current, peak)`` resident memory of the daemon process itself (not its redis-server)."""
        return read_rss_mb(self.pid)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=60)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
