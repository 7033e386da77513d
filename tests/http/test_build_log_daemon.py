"""Live logs through the real daemon (``twist asud`` with bwrap builds and its embedded Redis): a fresh
build's lines arrive while it runs, and the followed answer ends with the build."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.http.client import LiveServer, TreqClient
from tests.http.test_build_log import events, open_raw
from tests.support.daemon import DaemonProcess, daemon_settings
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree) -> Iterator[DaemonProcess]:
    require_executable("bwrap", "bubblewrap")
    require_executable("redis-server")
    directory = tmp_path_factory.mktemp("asud-logs")
    settings = daemon_settings(demo_tree, directory / "data", build={"workers": 2, "sandbox": "bwrap"})
    process = DaemonProcess(directory, settings)
    process.start(timeout=120)
    try:
        yield process
    finally:
        process.stop()


def live_of(daemon: DaemonProcess) -> LiveServer:
    host, port = daemon.url.removeprefix("http://").rsplit(":", 1)
    return LiveServer(daemon.url, host, int(port), TreqClient(daemon.url))


def body(**fields: Any) -> dict[str, Any]:
    return {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": [],
            "client": "logs/1", **fields}


@pytest_twisted.ensureDeferred
async def test_lines_arrive_while_the_build_runs_and_the_stream_ends_with_it(daemon: DaemonProcess) -> None:
    live = live_of(daemon)
    posted = await live.client.post("/api/v1/build", json=body(packages=["htop"]))
    assert posted.status_code == 202, posted.text
    request_hash = posted.json()["request_hash"]
    path = f"/api/v1/build/{request_hash}/log"
    text = await open_raw(live, path + "?follow=1")
    sse = await open_raw(live, path, {"Accept": "text/event-stream"})
    await text.wait_for(b"==> asud", timeout=60)
    status = await live.client.get(f"/api/v1/build/{request_hash}")
    assert status.status_code == 202, "the first line came only after the build had finished"
    data = await text.closed
    assert b"==> make image" in data and b"storing" in data
    assert data.rstrip(b"\r\n0").endswith(b"done\r\n") or b"\ndone\n" in data
    assert data.index(b"==> asud") < data.index(b"\ndone\n")
    got = events(await sse.closed)
    assert got[-1]["event"] == "end" and got[-1]["data"]["status"] == "done"
    assert any(event["event"] == "line" and event["data"]["step"] == "make image" for event in got)
    final = await live.client.get(f"/api/v1/build/{request_hash}")
    assert final.status_code == 200
    # Finished: the whole build.log from the store.
    whole = await live.client.get(path)
    assert "==> make image" in whole.text


def _asud(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "asud", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"})


def _read_until(stream: Any, wanted: Callable[[list[str]], bool], timeout: float) -> list[str]:
    """Lines of ``stream`` (read in a thread) until ``wanted(lines)``."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))
            if wanted(lines):
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    return lines


@pytest_twisted.ensureDeferred
async def test_tail_all_sees_two_concurrent_builds_and_tail_follows_one(daemon: DaemonProcess) -> None:
    live = live_of(daemon)
    everything = _asud("tail", "--all", "--server", daemon.url)
    try:
        started = await deferToThread(_read_until, everything.stderr, lambda lines: bool(lines), 30)
        assert started and started[0].startswith("following "), started
        first = await live.client.post("/api/v1/build", json=body(packages=["nano"]))
        second = await live.client.post("/api/v1/build", json=body(target="ath79/generic",
                                                                    profile="tplink,archer-c7-v5"))
        assert first.status_code == 202 and second.status_code == 202, (first.text, second.text)
        one = _asud("tail", first.json()["request_hash"], "--server", daemon.url)
        out, _ = await deferToThread(one.communicate, timeout=180)
        assert one.returncode == 0, out
        assert "==> make image" in out and out.rstrip().endswith("done")

        def both_done(lines: list[str]) -> bool:
            return len({line.split()[0] for line in lines if line.endswith(" done")}) >= 2

        lines = await deferToThread(_read_until, everything.stdout, both_done, 180)
        assert both_done(lines), lines[-20:]
        keys = {line.split()[0] for line in lines if line.endswith(" done")}
        for key in keys:
            mine = [line for line in lines if line.startswith(key + " ")]
            assert any(" started on " in line for line in mine)
            assert any(" make image " in line for line in mine)
        assert "\x1b[" not in "".join(lines)  # not a terminal: no colours
    finally:
        everything.terminate()
        everything.wait(10)


@pytest_twisted.ensureDeferred
async def test_tail_of_a_failing_build_exits_1(daemon: DaemonProcess) -> None:
    live = live_of(daemon)
    posted = await live.client.post("/api/v1/build", json=body(
        target="ath79/generic", profile="tplink,tl-wr842n-v3", packages=["python3-light"]))
    assert posted.status_code == 202, posted.text
    tail = _asud("tail", posted.json()["request_hash"], "--server", daemon.url)
    out, _ = await deferToThread(tail.communicate, timeout=180)
    assert tail.returncode == 1, out
    assert "failed: Error: Selected packages exceed device storage" in out
