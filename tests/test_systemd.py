"""asud under systemd's eyes: the sd_notify datagrams a ``Type=notify`` unit reads, from a real daemon."""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asud.systemd import Notifier, notify_address, watchdog_interval
from tests.support.daemon import DaemonProcess, daemon_settings, http_call
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

_LISTENING = re.compile(r"asud listening on \S+ \(IPv4Address\(type='TCP', host='([\d.]+)', port=(\d+)\)\)")


class NotifySocket:
    """What systemd does: a datagram socket at ``$NOTIFY_SOCKET``; a thread keeps every message with what
    was true when it arrived (whether the daemon's port answered ``/json/v1/overview.json``)."""

    def __init__(self, address: str, daemon_log: Path) -> None:
        self.address = address
        self.daemon_log = daemon_log
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(notify_address({"NOTIFY_SOCKET": address}))
        self.socket.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str], int | None]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            answered = self._overview_status() if "READY" in fields else None
            self.messages.append((time.monotonic(), fields, answered))

    def _overview_status(self) -> int | None:
        text = self.daemon_log.read_text(errors="replace") if self.daemon_log.exists() else ""
        found = _LISTENING.search(text)
        if found is None:
            return None
        try:
            url = f"http://{found.group(1)}:{found.group(2)}/json/v1/overview.json"
            return http_call(url, timeout=5).status
        except OSError:
            return None

    def fields(self, key: str) -> list[str]:
        return [fields[key] for _, fields, _ in list(self.messages) if key in fields]

    def wait_for(self, key: str, value: str | None = None, timeout: float = 30.0, *,
                 pattern: str | None = None) -> None:
        """Until a datagram carried ``key`` (equal to ``value``, or matching ``pattern``, if given)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for found in self.fields(key):
                if pattern is not None and re.fullmatch(pattern, found):
                    return
                if pattern is None and (value is None or found == value):
                    return
            time.sleep(0.05)
        raise AssertionError(f"no {key}={value or pattern or '…'} within {timeout} s: {self.messages}")

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def notify_dir() -> Iterator[Path]:
    # A socket path must stay under 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="asud-notify-") as directory:
        yield Path(directory)


def test_notify_address_reads_paths_and_abstract_names() -> None:
    assert notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert notify_address({"NOTIFY_SOCKET": "@/org/freedesktop/systemd1/notify/1"}) == \
        "\0/org/freedesktop/systemd1/notify/1"
    assert notify_address({}) is None
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1"}) is None  # not a unix socket: not ours to use
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({}) is None


def test_a_datagram_reaches_an_abstract_socket() -> None:
    name = f"@asud-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(notify_address({"NOTIFY_SOCKET": name}))
        notifier = Notifier(notify_address({"NOTIFY_SOCKET": name}) or "")
        try:
            assert notifier.send(READY=1, STATUS="two\nlines")
        finally:
            notifier.close()
        assert receiver.recv(4096) == b"READY=1\nSTATUS=two lines\n"


def test_a_missing_socket_drops_the_message() -> None:
    notifier = Notifier("/nonexistent/notify.sock")
    try:
        assert not notifier.send(READY=1)
    finally:
        notifier.close()


def test_daemon_is_ready_only_once_it_answers_reports_builds_pings_and_says_stopping(
    demo_tree: DemoTree, tmp_path: Path, notify_dir: Path
) -> None:
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    settings = daemon_settings(demo_tree, tmp_path / "asud" / "data")
    daemon = DaemonProcess(tmp_path / "asud", settings,
                           env={"NOTIFY_SOCKET": str(notify_dir / "notify.sock"), "WATCHDOG_USEC": "400000"})
    receiver = NotifySocket(str(notify_dir / "notify.sock"), daemon.log_path)
    try:
        daemon.start()
        receiver.wait_for("READY", "1")
        ready_at, _, answered = next(item for item in receiver.messages if "READY" in item[1])
        assert answered == 200, "READY=1 came before the port answered /json/v1/overview.json"
        statuses = receiver.fields("STATUS")
        starting = [status for status in statuses if status.startswith("starting: ")]
        assert starting[:1] == ["starting: systemd-notify"], statuses
        assert "starting: catalog" in starting and starting[-1] == "starting: http", statuses
        before_ready = [fields for at, fields, _ in receiver.messages if at < ready_at]
        assert not any("READY" in fields for fields in before_ready)
        receiver.wait_for("STATUS", "0 builds running, 0 queued")
        time.sleep(1.0)
        pings = [at for at, fields, _ in receiver.messages if fields.get("WATCHDOG") == "1"]
        assert len(pings) >= 4, receiver.messages  # one at start, then every 0.2 s
        gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
        assert max(gaps) < 1.0, gaps

        assert _post_build(daemon.url).status == 202
        # Said when the build starts (its queue entry may still count as queued at that instant).
        receiver.wait_for("STATUS", timeout=60, pattern=r"1 build running, [01] queued")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == -signal.SIGTERM, daemon.log_text()[-3000:]
        receiver.wait_for("STOPPING", "1", timeout=5)
        stopping_at, stopping, _ = next(item for item in receiver.messages if "STOPPING" in item[1])
        # The demo build takes about a second: it may be over before SIGTERM arrives. The status says what
        # the daemon did (the log says whether it handed a build back).
        handed_back = "handed back to the queue" in daemon.log_text()
        expected = "stopping, handing 1 running build(s) back to the queue" if handed_back else "stopping"
        assert stopping.get("STATUS") == expected, (stopping, daemon.log_text()[-2000:])
        assert not any("STATUS" in fields and "queued" in fields["STATUS"]
                       for at, fields, _ in receiver.messages if at > stopping_at)
    finally:
        daemon.stop()
        receiver.close()


def _post_build(url: str) -> Any:
    request = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
               "packages": ["luci"]}
    return http_call(f"{url}/api/v1/build", request)


def test_on_the_journal_stream_lines_carry_a_priority_and_no_timestamp(demo_tree: DemoTree,
                                                                       tmp_path: Path) -> None:
    """systemd sets $JOURNAL_STREAM to the device:inode of the stdout it connected to journald."""
    require_executable("redis-server")
    settings = daemon_settings(demo_tree, tmp_path / "asud" / "data", build={"workers": 0, "sandbox": "none"})
    log_path = tmp_path / "asud" / "asud.log"
    log_path.parent.mkdir(parents=True)
    log_path.touch()
    status = log_path.stat()
    journal = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
    daemon = DaemonProcess(tmp_path / "asud", settings, env=journal)
    try:
        daemon.start()
        assert http_call(f"{daemon.url}/json/v1/overview.json").status == 200
    finally:
        assert daemon.stop() == -signal.SIGTERM
    lines = daemon.log_text().splitlines()
    assert "<6>[asud.service#info] asud started" in lines, lines[:20]
    assert all(re.match(r"<[0-7]>", line) for line in lines), [line for line in lines
                                                                if not re.match(r"<[0-7]>", line)][:5]
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\dT", line) for line in lines)


def test_elsewhere_lines_keep_twists_timestamp(demo_tree: DemoTree, tmp_path: Path) -> None:
    require_executable("redis-server")
    settings = daemon_settings(demo_tree, tmp_path / "asud" / "data", build={"workers": 0, "sandbox": "none"})
    daemon = DaemonProcess(tmp_path / "asud", settings, env={"JOURNAL_STREAM": "1:1"})  # another stream
    try:
        daemon.start()
    finally:
        daemon.stop()
    assert re.match(r"\d{4}-\d\d-\d\dT", daemon.log_text())
