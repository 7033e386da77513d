"""``GET /api/v1/build/{hash}/log``: text, ``?follow=1`` and SSE over a real socket, on a real
``redis-server``; the build is played by the test through the pool's Redis log sink and the records."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from asud.build.stages import BuildStage
from asud.errors import BuildError
from asud.http.log_hub import hub_for
from asud.http.root import make_resource
from asud.http.state import AsudApp
from asud.store.logstream import RedisLogSink, log_key
from tests.build.support import eventually, sleep
from tests.http.client import LiveServer, listening
from tests.http.conftest import close_app, demo_settings, open_app
from tests.store.support import validated
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

NODE = "node-log"


class Raw(Protocol):
    """A bare HTTP/1.1 client: sends one request, keeps every byte, can hang up mid-answer."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.data = b""
        self.closed: Deferred[bytes] = Deferred()
        self.arrived: list[tuple[bytes, float]] = []

    def connectionMade(self) -> None:
        self.transport.write(self.request)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self.arrived.append((data, reactor.seconds()))  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.closed.callback(self.data)

    async def wait_for(self, needle: bytes, timeout: float = 10.0) -> None:
        await eventually(lambda: needle in self.data, timeout=timeout)

    def hang_up(self) -> None:
        self.transport.abortConnection()  # type: ignore[union-attr]


async def open_raw(live: LiveServer, path: str, headers: dict[str, str] | None = None) -> Raw:
    lines = [f"GET {path} HTTP/1.1", f"Host: {live.host}:{live.port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    protocol = Raw(("\r\n".join(lines) + "\r\n\r\n").encode())
    await connectProtocol(TCP4ClientEndpoint(reactor, live.host, live.port), protocol)
    return protocol


def events(data: bytes) -> list[dict[str, Any]]:
    """SSE events of a raw chunked answer (chunk sizes stripped out line by line)."""
    body = data.split(b"\r\n\r\n", 1)[1].decode()
    found = []
    for block in body.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event", "data"):
                fields[name] = json.loads(value) if name == "data" else value
        if "event" in fields:
            found.append(fields)
    return found


class Build:
    """One build the test drives as the pool would."""

    def __init__(self, app: AsudApp, **fields: Any) -> None:
        self.app = app
        self.request = validated(**fields)
        self.sink = RedisLogSink(app.redis)  # type: ignore[arg-type]

    @property
    def key(self) -> str:
        return self.request.image_key

    async def submit(self) -> None:
        await self.app.records.submit(self.request, client="test/1")  # type: ignore[union-attr]

    async def start(self) -> None:
        await self.app.records.started(self.key, NODE)  # type: ignore[union-attr]
        self.sink.begin(self.key, NODE)
        self.sink.status(self.key, BuildStage.DOWNLOAD_IMAGEBUILDER)

    def line(self, text: str, step: str = "make image") -> None:
        self.sink.line(self.key, step, text)

    async def done(self) -> None:
        await self.sink.flushed(self.key)
        await self.app.records.done(self.key, {"images": [], "manifest": {}}, self.request.bin_dir,  # type: ignore[union-attr]
                                    "", "", node=NODE)
        self.sink.end(self.key, None)
        await self.sink.flushed(self.key)

    async def fail(self, reason: str) -> None:
        await self.app.records.failed(self.key, BuildError(reason), node=NODE)  # type: ignore[union-attr]
        self.sink.end(self.key, reason)
        await self.sink.flushed(self.key)


@pytest_twisted.async_yield_fixture
async def app(tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree) -> AsyncIterator[AsudApp]:
    made = await open_app(demo_settings(tmp_path / "data", demo_tree), redis_server.url, demo_tree)
    try:
        yield made
    finally:
        await hub_for(made).close()
        await sleep(0.05)  # txredisapi finishes parsing a reply it had begun (callLater(0) turns)
        await close_app(made)


@pytest_twisted.async_yield_fixture
async def live(app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(make_resource(app)) as server:
        yield server


@pytest_twisted.ensureDeferred
async def test_unknown_hash_is_404_json(live: LiveServer) -> None:
    response = await live.client.get("/api/v1/build/" + "0" * 32 + "/log")
    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert response.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_text_so_far_then_follow_to_the_end(app: AsudApp, live: LiveServer) -> None:
    build = Build(app)
    await build.submit()
    await build.start()
    build.line("first")
    await build.sink.flushed(build.key)
    path = f"/api/v1/build/{build.request.request_hash}/log"
    response = await live.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    text = response.text
    assert "==> make image\nfirst\n" in text and "==> stage: download_imagebuilder" in text

    follower = await open_raw(live, path + "?follow=1")
    await follower.wait_for(b"first\n")
    build.line("second")
    await follower.wait_for(b"second\n")
    assert not follower.closed.called  # still running: the answer stays open
    seen_second = reactor.seconds()  # type: ignore[attr-defined]
    await build.done()
    data = await follower.closed
    assert data.rstrip().endswith(b"0")  # the last chunk
    assert b"second\n" in data and b"\ndone\n" in data
    assert data.index(b"second") < data.index(b"\ndone\n")
    assert follower.arrived[-1][1] >= seen_second
    assert hub_for(app).subscribers() == 0

    # Finished: the whole log, and with follow the end line at once.
    response = await live.client.get(path + "?follow=1")
    body = response.text
    assert "first\n" in body and body.endswith("done\n")


@pytest_twisted.ensureDeferred
async def test_follow_a_failing_build_and_a_queued_one(app: AsudApp, live: LiveServer) -> None:
    ahead, build = Build(app), Build(app, packages=["htop"])
    await ahead.submit()
    await build.submit()
    path = f"/api/v1/build/{build.request.request_hash}/log?follow=1"
    follower = await open_raw(live, path)
    await follower.wait_for(b"queued: position 1\n")
    await ahead.start()  # the other one leaves the queue: this one moves up
    await follower.wait_for(b"queued: position 0\n", timeout=10)
    await build.start()
    build.line("compiling")
    await follower.wait_for(b"compiling\n")
    await build.fail("Error: impossible package selection")
    data = await follower.closed
    assert b"failed: Error: impossible package selection\n" in data


@pytest_twisted.ensureDeferred
async def test_sse_lines_status_end_and_resume_by_last_event_id(app: AsudApp, live: LiveServer) -> None:
    build = Build(app)
    await build.submit()
    await build.start()
    path = f"/api/v1/build/{build.request.request_hash}/log"
    first = await open_raw(live, path, {"Accept": "text/event-stream"})
    for number in range(5):
        build.line(f"line {number}")
    await first.wait_for(b'"text":"line 4"')
    assert b"content-type: text/event-stream" in first.data.lower()
    # The first line arrived while the build was still running (no end yet).
    got = events(first.data)
    assert [event["event"] for event in got][:2] == ["status", "status"]
    assert not any(event["event"] == "end" for event in got)
    lines = [event for event in got if event["event"] == "line"]
    assert [event["data"]["text"] for event in lines] == [f"line {n}" for n in range(5)]
    assert set(lines[0]["data"]) == {"t", "step", "text"} and lines[0]["data"]["step"] == "make image"
    first.hang_up()
    await first.closed
    await eventually(lambda: hub_for(app).subscribers() == 0)  # a disconnect leaves no subscriber

    for number in range(5, 8):
        build.line(f"line {number}")
    await build.sink.flushed(build.key)
    resumed = await open_raw(live, path, {"Accept": "text/event-stream", "Last-Event-ID": lines[2]["id"]})
    await resumed.wait_for(b'"text":"line 7"')
    await build.done()
    data = await resumed.closed
    again = events(data)
    texts = [event["data"]["text"] for event in again if event["event"] == "line"]
    assert texts == ["line 3", "line 4", "line 5", "line 6", "line 7"]  # no gap, no repeat
    assert again[-1]["event"] == "end" and again[-1]["data"]["status"] == "done"
    ids = [event["id"] for event in again]
    assert len(set(ids)) == len(ids)


@pytest_twisted.ensureDeferred
async def test_many_followers_one_reader_and_a_disconnect_mid_stream(app: AsudApp, live: LiveServer) -> None:
    build = Build(app)
    await build.submit()
    await build.start()
    path = f"/api/v1/build/{build.request.request_hash}/log"
    followers = [await open_raw(live, path, {"Accept": "text/event-stream"}) for _ in range(20)]
    await eventually(lambda: hub_for(app).subscribers(log_key(build.key)) == 20)
    build.line("to everyone")
    for follower in followers:
        await follower.wait_for(b"to everyone")
    for follower in followers[:10]:
        follower.hang_up()
    await eventually(lambda: hub_for(app).subscribers() == 10)
    build.line("to the rest")
    await build.done()
    for follower in followers[10:]:
        data = await follower.closed
        assert b"to the rest" in data and b"event: end" in data
    await eventually(lambda: hub_for(app).subscribers() == 0)
    await eventually(lambda: not hub_for(app).reading)  # nobody follows: the shared reader's connection goes


async def _script_calls(app: AsudApp) -> int:
    info = await app.redis.call("INFO", "commandstats")  # type: ignore[union-attr]
    for line in info.splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


@pytest_twisted.ensureDeferred
async def test_followers_of_a_queued_build_share_their_looks_at_its_record(
    app: AsudApp, live: LiveServer
) -> None:
    ahead, build = Build(app), Build(app, packages=["htop"])
    await ahead.submit()
    await build.submit()
    path = f"/api/v1/build/{build.request.request_hash}/log"
    followers = [await open_raw(live, path, {"Accept": "text/event-stream"}) for _ in range(20)]
    for follower in followers:
        await follower.wait_for(b'"queue_position":1')
    before = await _script_calls(app)
    await sleep(2.2)  # each follower looks at the record once more (every 2 s): one read serves them all
    assert await _script_calls(app) - before <= 4
    await ahead.start()
    for follower in followers:
        await follower.wait_for(b'"queue_position":0', timeout=10)
    for follower in followers:
        follower.hang_up()
    await eventually(lambda: hub_for(app).subscribers() == 0)


@pytest_twisted.ensureDeferred
async def test_a_finished_build_redis_forgot_is_served_from_build_log(app: AsudApp, live: LiveServer) -> None:
    build = Build(app)
    await build.submit()
    await build.start()
    build.line("kept in the store")
    await build.done()
    app.files.write_text(build.request.bin_dir, "build.log", "==> make image\nkept in the store\n")
    await app.redis.call("DEL", log_key(build.key))  # type: ignore[union-attr]
    path = f"/api/v1/build/{build.request.request_hash}/log"
    text = (await live.client.get(path)).text
    assert text == "==> make image\nkept in the store\n"
    response = await live.client.get(path, headers={"Accept": "text/event-stream"})
    got = events(b"x\r\n\r\n" + response.content)
    assert [event["event"] for event in got] == ["line", "end"]
    assert got[0]["data"]["text"] == "kept in the store"


@pytest_twisted.ensureDeferred
async def test_live_builds_on_loopback_sees_every_build(app: AsudApp, live: LiveServer) -> None:
    one, two = Build(app), Build(app, packages=["htop"])
    await one.submit()
    await two.submit()
    watcher = await open_raw(live, "/api/v1/builds/live", {"Accept": "text/event-stream"})
    await watcher.wait_for(b": asud live builds")
    await one.start()
    await two.start()
    one.line("from one")
    two.line("from two")
    await one.done()
    await two.fail("Error: no")
    await watcher.wait_for(b'"status":"failed"')
    got = events(watcher.data)
    for build in (one, two):
        mine = [event for event in got if event["data"]["key"] == build.key]
        assert [event["event"] for event in mine] == ["started", "status", "line", "finished"]
    watcher.hang_up()
    await watcher.closed
    await eventually(lambda: hub_for(app).subscribers() == 0)


@pytest_twisted.ensureDeferred
async def test_live_builds_needs_the_token_when_set_else_loopback(app: AsudApp, live: LiveServer) -> None:
    import attrs

    proxied = await live.client.get("/api/v1/builds/live", headers={"X-Forwarded-For": "203.0.113.5"})
    assert proxied.status_code == 403 and proxied.json()["status"] == 403
    app.config = attrs.evolve(app.config, http=attrs.evolve(app.config.http, admin_token="s3cret"))
    async with listening(make_resource(app)) as guarded:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            refused = await guarded.client.get("/api/v1/builds/live", headers=headers)
            assert refused.status_code == 401, headers
        watcher = await open_raw(guarded, "/api/v1/builds/live", {"Authorization": "Bearer s3cret",
                                                                  "X-Forwarded-For": "203.0.113.5"})
        await watcher.wait_for(b": asud live builds")
        assert watcher.data.startswith(b"HTTP/1.1 200")
        watcher.hang_up()
        await watcher.closed
        await eventually(lambda: hub_for(app).subscribers() == 0)


@pytest_twisted.ensureDeferred
async def test_a_slow_reader_is_paused_not_buffered_and_loses_nothing(app: AsudApp, live: LiveServer) -> None:
    build = Build(app)
    await build.submit()
    await build.start()
    path = f"/api/v1/build/{build.request.request_hash}/log"
    slow = await open_raw(live, path, {"Accept": "text/event-stream"})
    await slow.wait_for(b"event: status")
    slow.transport.pauseProducing()  # type: ignore[union-attr]  # the client stops reading
    stream = log_key(build.key)
    filler = "y" * 1000
    for number in range(3000):  # ~3 MB: far more than the socket buffers hold
        build.line(f"{number} {filler}")
        if number % 500 == 499:
            await build.sink.flushed(build.key)
    await build.sink.flushed(build.key)
    # The daemon stopped feeding this reader: it left the hub instead of buffering the rest.
    await eventually(lambda: hub_for(app).subscribers(stream) == 0, timeout=20)
    slow.transport.resumeProducing()  # type: ignore[union-attr]
    await build.done()
    data = await slow.closed
    numbers = [int(event["data"]["text"].split()[0]) for event in events(data) if event["event"] == "line"]
    assert numbers == list(range(3000))  # resumed from Redis after its last id: nothing lost or repeated
