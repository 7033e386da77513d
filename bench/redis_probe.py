"""Read-only looks into a daemon's Redis (its unix socket) with a few lines of RESP, no client library.

The figures count build records (``asud:build:*``, one per image: ``asud.store.records``) before and after
a load, and the cold build reads its record's ``stage`` while it runs.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

__all__ = ["RedisProbe"]


class RedisProbe:
    """A blocking connection to ``redis-server`` on the unix socket ``path``."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(timeout)
        self._socket.connect(str(path))
        self._reader = self._socket.makefile("rb")

    def call(self, *args: str | int) -> Any:
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._socket.sendall(b"".join(parts))
        return self._reply()

    def _reply(self) -> Any:
        line = self._reader.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._reader.read(size + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise RuntimeError(f"unexpected redis reply {line!r}")

    def count(self, pattern: str) -> int:
        """How many keys match ``pattern`` (SCAN, so the server never blocks on a big KEYS)."""
        cursor, total = "0", 0
        while True:
            cursor, keys = self.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            total += len(keys)
            if cursor == "0":
                return total

    def builds(self) -> int:
        """Build records (one per image key, whatever their state)."""
        return self.count("asud:build:*")

    def stage(self, request_hash: str) -> str | None:
        """The stage of the build a request maps to, or ``None`` before it is recorded."""
        image_key = self.call("HGET", f"asud:request:{request_hash}", "image_key")
        if not image_key:
            return None
        stage = self.call("HGET", f"asud:build:{image_key}", "stage")
        return str(stage) if stage else None

    def close(self) -> None:
        self._reader.close()
        self._socket.close()

    def __enter__(self) -> RedisProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
