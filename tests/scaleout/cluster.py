"""Real processes for the scale-out fault tests: one private ``redis-server`` (append-only, as asud's own
one is), one files store shared through ``[store] dir``, and ``twist asud`` daemons on both.

Each daemon is a ``tests.support.daemon.DaemonProcess`` with a data directory of its own (ImageBuilder and
package caches, workspaces), a node name of its own (``[cluster] node``: the name it takes work from the
queue under and writes on the build records) and short leases, so a dead daemon's build is taken over
within seconds. :func:`redis_command` reads the shared state the way the daemons write it (build records,
the queue) without a Redis client library: the tests count builds there, as sysup's counted rows.

Nothing here touches the machine's shared Redis (6379): the server listens on a unix socket only, and the
daemons on ports of 127.0.0.1 they pick themselves.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.daemon import DaemonProcess, daemon_settings, http_call
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree

__all__ = [
    "DONE", "IN_PROGRESS", "LEASE_RENEW", "LEASE_TIMEOUT", "Cluster", "Poller", "build_body", "redis_command",
    "submit", "wait_for",
]

#: Short leases so a dead daemon's build is taken over within seconds.
LEASE_TIMEOUT = 3.0
LEASE_RENEW = 1.0
#: Answers a polling client may see while a build is on its way: queued/started, then done.
IN_PROGRESS, DONE = 202, 200
#: What a poller records for a daemon that does not answer at all.
NO_ANSWER = 0


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


# -- Redis, read directly ------------------------------------------------------------------------------
def _read_reply(stream: Any) -> Any:
    line = stream.readline()
    if not line:
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode()
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise RuntimeError(f"unexpected reply from redis-server: {line!r}")


def redis_command(socket_path: Path, *args: str | int, timeout: float = 5.0) -> Any:
    """One command over the unix socket (RESP2), its reply as str/int/list/None; a blocking call for
    test threads (never the daemons' own client)."""
    parts = [str(arg).encode() for arg in args]
    payload = b"".join([f"*{len(parts)}\r\n".encode(),
                        *(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(str(socket_path))
        connection.sendall(payload)
        with connection.makefile("rb") as stream:
            return _read_reply(stream)


# -- the client's side -----------------------------------------------------------------------------------
def build_body(rootfs_size_mb: int, **overrides: Any) -> dict[str, Any]:
    """A small ath79 build of the demo tree; each ``rootfs_size_mb`` is a different image (and build)."""
    body: dict[str, Any] = {
        "version": "24.10.4",
        "target": "ath79/generic",
        "profile": "tplink,archer-c7-v5",
        "packages": [],
        "rootfs_size_mb": rootfs_size_mb,
        "client": "scaleout-tests/1",
    }
    body.update(overrides)
    return body


def submit(url: str, body: dict[str, Any], *, refused: list[int] | None = None, timeout: float = 60.0) -> str:
    """POST ``body`` as a router does: on 503/529 wait ``Retry-After`` and ask again (each such status is
    appended to ``refused``); the request hash of the 202/200 answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = http_call(f"{url}/api/v1/build", body)
        if answer.status in (IN_PROGRESS, DONE):
            return str(answer.json()["request_hash"])
        assert answer.status in (503, 529), (answer.status, answer.body)
        if refused is not None:
            refused.append(answer.status)
        assert time.monotonic() < deadline, f"still refused after {timeout:.0f} s"
        time.sleep(float(answer.header("Retry-After") or 1))


class Poller(threading.Thread):
    """GETs ``/api/v1/build/<hash>`` every ``interval`` s until 200 (or anything but 202), keeping every
    status seen. A daemon that does not answer is recorded as ``0``."""

    def __init__(self, urls: list[str], request_hash: str, *, interval: float = 0.2,
                 timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.urls, self.request_hash = urls, request_hash
        self.interval, self.timeout = interval, timeout
        self.statuses: list[int] = []
        self.final: dict[str, Any] | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        turn = 0
        while time.monotonic() < deadline:
            url = self.urls[turn % len(self.urls)]
            turn += 1
            try:
                answer = http_call(f"{url}/api/v1/build/{self.request_hash}", timeout=10)
            except OSError:
                self.statuses.append(NO_ANSWER)
                time.sleep(self.interval)
                continue
            self.statuses.append(answer.status)
            if answer.status != IN_PROGRESS:
                self.final = answer.json()
                return
            time.sleep(self.interval)

    def result(self) -> int:
        """The last status seen, after waiting for the poller to finish."""
        self.join(self.timeout + 10)
        return self.statuses[-1] if self.statuses else -1


# -- the cluster -------------------------------------------------------------------------------------------
class Cluster:
    """What one test runs: the Redis and store every daemon shares, and the daemons started."""

    def __init__(self, root: Path, redis: RedisProcess, tree: DemoTree) -> None:
        self.root = root
        self.redis = redis
        self.tree = tree
        self.store_dir = root / "store"
        self.daemons: list[DaemonProcess] = []

    def settings(self, name: str, *, workers: int = 1, **sections: Any) -> dict[str, Any]:
        """A daemon's settings: the shared Redis and store, its own data directory and node name."""
        defaults: dict[str, Any] = {
            "redis": {"url": self.redis.url},
            "store": {"dir": str(self.store_dir)},
            "cluster": {"node": name},
            "build": {"workers": workers, "lease_timeout": LEASE_TIMEOUT,
                      "lease_renew_interval": LEASE_RENEW},
            "requests": {"max_pending_jobs": 1000, "max_pending_per_client": 1000},
        }
        for section, values in sections.items():
            defaults[section] = {**defaults.get(section, {}), **values}
        return daemon_settings(self.tree, self.root / name / "data", **defaults)

    def daemon(self, name: str, *, workers: int = 1, **sections: Any) -> DaemonProcess:
        """Start ``twist asud`` as node ``name`` (again, with the same data directory, after a stop)."""
        process = DaemonProcess(self.root / name, self.settings(name, workers=workers, **sections))
        self.daemons.append(process)
        process.start()
        return process

    def command(self, *args: str | int) -> Any:
        return redis_command(self.redis.socket_path, *args)

    def keys(self, pattern: str) -> list[str]:
        found: list[str] = []
        cursor = "0"
        while True:
            cursor, batch = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found += batch
            if cursor == "0":
                return sorted(set(found))

    def builds(self) -> list[dict[str, str]]:
        """Every build record (one per image key), as Redis holds it."""
        records = []
        for key in self.keys("asud:build:*"):
            flat = self.command("HGETALL", key)
            records.append(dict(zip(flat[::2], flat[1::2], strict=True)))
        return records

    def statuses(self) -> list[str]:
        return sorted(record["status"] for record in self.builds())

    def started_by(self, node: str) -> list[dict[str, str]]:
        """Builds ``node`` is running now (by the records)."""
        return [record for record in self.builds()
                if record["status"] == "started" and record.get("node") == node]

    def logs(self) -> str:
        return "\n".join(f"--- {daemon.directory.name} ---\n{daemon.log_text()[-4000:]}"
                         for daemon in self.daemons)

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.kill()
        self.redis.stop()
