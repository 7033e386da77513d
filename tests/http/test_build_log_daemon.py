"""Live logs through the real daemon (``twist asud`` with bwrap builds and its embedded Redis): a fresh
build's lines arrive while it runs, and the followed answer ends with the build."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted

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
