"""Slow and idle clients against the real daemon (``twist asud`` as a child, its own ``redis-server``).

* Slow-loris: clients that send their request one byte a second (headers, or a declared body) hold a
  socket each, never a build worker nor the reactor: the daemon answers others promptly meanwhile and
  builds a submitted image with its one worker. (Twisted's ``Site`` idle timeout, 60 s, restarts on every
  byte; the header block is capped at 16 KiB, and the body at ``[http] max_body_bytes``.)
* Thousands of idle connections (:data:`IDLE_CONNECTIONS`, bounded by this process's file limit) do not
  stop service to others.

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.scaleout.cluster import DONE, Poller, build_body, submit
from tests.support.daemon import DaemonProcess, daemon_settings, http_call
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]

pytestmark = pytest.mark.slow

#: Slow-loris clients at once, and how long each trickles (one byte a second).
LORIS_CLIENTS, LORIS_SECONDS = 8, 15
#: Idle connections held open at once (fewer if the file limit cannot be raised that far).
IDLE_CONNECTIONS = 10_000
#: Seconds to open them (the daemon closes a connection idle for 60 s), and how many are started at once.
OPEN_WITHIN, BATCH = 45.0, 1000
#: Every request of a well-behaved client must be answered within this while the others misbehave.
PROMPT = 1.0


@pytest.fixture
def daemon(tmp_path: Path, demo_tree: DemoTree) -> Iterator[DaemonProcess]:
    require_executable("redis-server", "redis-server")
    require_executable("bwrap", "bubblewrap")
    # A listen backlog as a busy server would set (Twisted's default is 50).
    settings = daemon_settings(demo_tree, tmp_path / "data",
                               http={"listen": ["tcp:0:interface=127.0.0.1:backlog=1024"]})
    process = DaemonProcess(tmp_path / "daemon", settings)
    yield process
    process.stop()  # SIGTERM: the daemon stops its own redis-server too (kill -9 would leave it running)


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port
    return parts.hostname, parts.port


def _prompt_answers(url: str, count: int) -> list[float]:
    """``count`` cheap requests (a status lookup, which asks Redis), one after another; their durations."""
    durations = []
    for _ in range(count):
        started = time.monotonic()
        answer = http_call(f"{url}/api/v1/build/{'cd' * 32}", timeout=10)
        durations.append(time.monotonic() - started)
        assert answer.status == 404, answer
    return durations


def _loris(address: tuple[str, int], head: bytes, payload: bytes, stop: threading.Event,
           sent: list[int]) -> None:
    """Send ``head`` at once, then ``payload`` one byte a second until ``stop`` (at most
    ``LORIS_SECONDS`` bytes)."""
    with socket.create_connection(address, timeout=5) as connection:
        connection.sendall(head)
        for byte in payload[:LORIS_SECONDS]:
            if stop.wait(1.0):
                return
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                return
            sent.append(1)


def test_slow_loris_holds_no_worker_and_does_not_block_the_reactor(daemon: DaemonProcess) -> None:
    daemon.start()
    address = _address(daemon.url)
    slow_headers = b"GET /api/v1/build/" + b"ab" * 32 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    slow_body = (b"POST /api/v1/build HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 400\r\n\r\n")
    stop = threading.Event()
    sent: list[int] = []
    lorises = []
    for index in range(LORIS_CLIENTS):
        payload = slow_headers if index % 2 else slow_body + b"{" * 400
        # a slow-body client first sends its headers at once, then trickles the body
        head = b"" if index % 2 else slow_body
        lorises.append(threading.Thread(target=_loris, args=(address, head, payload[len(head):], stop, sent)))
    for loris in lorises:
        loris.start()
    try:
        time.sleep(2)  # every loris connected and trickling
        request_hash = submit(daemon.url, build_body(rootfs_size_mb=601))
        poller = Poller([daemon.url], request_hash, timeout=LORIS_SECONDS * 8)
        poller.start()
        durations = _prompt_answers(daemon.url, 20)
        assert max(durations) < PROMPT, durations
        assert poller.result() == DONE, (poller.final, daemon.log_text()[-3000:])  # the one worker built it
        trickling = sum(loris.is_alive() for loris in lorises)
    finally:
        stop.set()
        for loris in lorises:
            loris.join(LORIS_SECONDS + 10)
    assert daemon.process is not None and daemon.process.poll() is None
    print(f"\nFIGURES slow-loris: clients={LORIS_CLIENTS} bytes_trickled={len(sent)} "
          f"still_trickling_when_build_done={trickling} prompt_requests=20 slowest={max(durations):.3f}s "
          "build_done=yes answers_5xx=0")


def _raise_file_limit(wanted: int) -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` towards ``wanted`` (the daemon started after inherits
    it); the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _open_idle(address: tuple[str, int], count: int, *, deadline: float) -> list[socket.socket]:
    """``count`` connections that send nothing, connected without blocking (in batches the daemon's accept
    queue can take), until ``deadline``; the ones that connected."""
    connected: list[socket.socket] = []
    while len(connected) < count and time.monotonic() < deadline:
        batch = []
        for _ in range(min(BATCH, count - len(connected))):
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            connection.setblocking(False)
            connection.connect_ex(address)
            batch.append(connection)
        poller = select.poll()
        for connection in batch:
            poller.register(connection, select.POLLOUT)
        pending = {connection.fileno(): connection for connection in batch}
        while pending and time.monotonic() < deadline:
            for fileno, _event in poller.poll(1000):
                connection = pending.pop(fileno)
                poller.unregister(fileno)
                if connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    connected.append(connection)
                else:
                    connection.close()
        for connection in pending.values():
            connection.close()
    return connected


def _count_open(connections: list[socket.socket]) -> int:
    """How many of ``connections`` the daemon has not closed (a non-blocking peek sees no EOF)."""
    count = 0
    for connection in connections:
        connection.setblocking(False)
        try:
            count += connection.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def test_thousands_of_idle_connections_do_not_stop_service(daemon: DaemonProcess) -> None:
    limit = _raise_file_limit(IDLE_CONNECTIONS + 1024)
    wanted = min(IDLE_CONNECTIONS, limit - 1024)
    assert wanted >= 2000, f"the file limit ({limit}) allows too few connections for this test"
    daemon.start()
    address = _address(daemon.url)
    idle: list[socket.socket] = []
    started = time.monotonic()
    try:
        idle = _open_idle(address, wanted, deadline=started + OPEN_WITHIN)
        opened_in = time.monotonic() - started
        still_open = _count_open(idle)
        assert len(idle) == wanted, f"{len(idle)} of {wanted} connected in {opened_in:.0f} s"
        durations = _prompt_answers(daemon.url, 20)
        assert max(durations) < PROMPT, durations
        request_hash = submit(daemon.url, build_body(rootfs_size_mb=602))
        poller = Poller([daemon.url], request_hash, timeout=120)
        poller.start()
        assert poller.result() == DONE, (poller.final, daemon.log_text()[-3000:])
        assert daemon.process is not None and daemon.process.poll() is None
    finally:
        for connection in idle:
            connection.close()
    print(f"\nFIGURES idle-connections: opened={len(idle)} open_when_measured={still_open} "
          f"(file limit {limit}) opened_in={opened_in:.1f}s "
          f"prompt_requests=20 slowest={max(durations):.3f}s build_done=yes answers_5xx=0")
