"""Many Server-Sent-Events followers in one single-threaded asyncio loop, timing every event they read.

A browser's ``EventSource`` is one HTTP/1.1 ``GET`` with ``Accept: text/event-stream`` that reads a chunked
answer as it comes. Here each follower is such a connection, and while it follows it does nothing but note
``(time.time(), bytes)`` for every read from its socket: no parsing, no JSON, so 500 of them in one loop
still read each write of the daemon as soon as the kernel has it. The events are decoded afterwards
(:func:`parse_answer`), each stamped with the arrival time of the read that completed it. A ticker beside
the followers measures the loop's own lag, so a report can show the client was not the bottleneck.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "Followers", "SseAnswer", "follow_all", "parse_answer"]

#: How often the lag ticker wakes (seconds).
TICK = 0.005
#: Followers connecting at once (each waits for its first bytes before the next may start): the daemon's
#: listen backlog is Twisted's default 50, and a full backlog drops SYNs (a one-second retry).
CONNECTING = 32
_END = b"event: end\n"


@dataclass(frozen=True)
class Event:
    """One SSE event: its ``id`` (``""`` when it has none), name, decoded ``data`` and arrival time."""

    id: str
    event: str
    data: Any
    received: float


@dataclass
class SseAnswer:
    """One follower's answer: status, headers and its events in the order they came."""

    status: int
    headers: dict[str, str]
    events: list[Event]
    #: When the first bytes of the answer arrived (``time.time()``).
    first_bytes: float
    #: How many socket reads brought it (fewer than events: the daemon's writes carry batches).
    reads: int = 0


class _Follower(asyncio.Protocol):
    """Keeps every read with its arrival time; ``done`` fires at the ``end`` event or the connection's end."""

    def __init__(self, request: bytes, first: asyncio.Future[None], done: asyncio.Future[None]) -> None:
        self.request = request
        self.reads: list[tuple[float, bytes]] = []
        self.first = first
        self.done = done
        self.transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.reads.append((time.time(), data))
        if not self.first.done():
            self.first.set_result(None)
            if not data.startswith(b"HTTP/1.1 200"):
                self.done.set_result(None)  # an error answer: no events will come
        if data.endswith(b"\r\n0\r\n\r\n") and not self.done.done():
            self.done.set_result(None)  # the answer ended without an end event
        # Chunk framing may split the marker across reads: look at the end of the last read too.
        if not self.done.done() and (_END in data or _END in self._tail + data[: len(_END)]):
            self.done.set_result(None)
        self._tail = data[-len(_END) :]

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.first, self.done):
            if not future.done():
                future.set_result(None)


@dataclass
class Followers:
    """What :func:`follow_all` saw: each follower's answer and the loop's lag samples (ms)."""

    answers: list[SseAnswer]
    lag_ms: list[float]
    #: ``time.time()`` when every follower had its first bytes (all connected and answered).
    ready_at: float
    #: Samples of ``sample()`` taken every 100 ms while following (``(time.time(), value)``).
    samples: list[tuple[float, Any]] = field(default_factory=list)
    #: Whether the run hit its timeout before every follower had finished.
    timed_out: bool = False
    #: What ``at_end()`` returned.
    ended: Any = None


def _request(host: str, port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()


def follow_all(
    host: str,
    port: int,
    path: str,
    count: int,
    *,
    sample: Callable[[], Any] | None = None,
    at_end: Callable[[], Any] | None = None,
    timeout: float = 300.0,
) -> Followers:
    """Open ``count`` SSE followers of ``path`` (each waits for its first bytes before another connects
    beyond ``CONNECTING`` at once) and read until every one saw its ``end`` event, or its answer ended;
    ``timeout`` bounds the whole run (then what came so far is kept). ``sample()`` is called every 100 ms;
    ``at_end()`` once all have finished, before their answers are decoded (its result is kept)."""

    async def run() -> Followers:
        loop = asyncio.get_running_loop()
        lag: list[float] = []
        samples: list[tuple[float, Any]] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                started = loop.time()
                await asyncio.sleep(TICK)
                lag.append((loop.time() - started - TICK) * 1000)

        async def sampler() -> None:
            while sample is not None and not stop.is_set():
                samples.append((time.time(), sample()))
                await asyncio.sleep(0.1)

        background = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
        request = _request(host, port, path)
        gate = asyncio.Semaphore(CONNECTING)
        followers: list[_Follower] = []

        async def connect() -> None:
            async with gate:
                first: asyncio.Future[None] = loop.create_future()
                done: asyncio.Future[None] = loop.create_future()
                follower = _Follower(request, first, done)
                followers.append(follower)
                await loop.create_connection(lambda: follower, host, port)
                await first

        ready_at = 0.0
        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(connect() for _ in range(count)))
                ready_at = time.time()
                await asyncio.gather(*(follower.done for follower in followers))
        except TimeoutError:
            timed_out = True  # reported: the followers that did not finish show as incomplete
        finally:
            ended = at_end() if at_end is not None else None
            stop.set()
            for follower in followers:
                if follower.transport is not None:
                    follower.transport.close()
            await asyncio.gather(*background, return_exceptions=True)
        answers = [parse_answer(follower.reads) for follower in followers if follower.reads]
        return Followers(answers, lag, ready_at, samples, timed_out, ended)

    return asyncio.run(run())


def parse_answer(reads: list[tuple[float, bytes]]) -> SseAnswer:
    """Decode one raw HTTP/1.1 answer (chunked or not) into its SSE events, each stamped with the arrival
    time of the read that brought its last byte."""
    raw = b"".join(data for _, data in reads)
    ends: list[int] = []
    offset = 0
    for _, data in reads:
        offset += len(data)
        ends.append(offset)
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        raise ValueError(f"no complete HTTP head in {raw[:200]!r}")
    head_lines = raw[:head_end].decode("latin-1").split("\r\n")
    status = int(head_lines[0].split(" ", 2)[1])
    headers = {}
    for line in head_lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    position = head_end + 4
    # (body offset, raw offset) where each piece of body starts: maps an event's end back to a read.
    pieces: list[tuple[int, int]] = []
    body_parts: list[bytes] = []
    body_size = 0
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            line_end = raw.find(b"\r\n", position)
            if line_end < 0:
                break  # cut off mid-answer: keep what came
            size = int(raw[position:line_end].split(b";")[0], 16)
            if size == 0:
                break
            start = line_end + 2
            piece = raw[start : start + size]
            pieces.append((body_size, start))
            body_parts.append(piece)
            body_size += len(piece)
            position = start + size + 2
    else:
        pieces.append((0, position))
        body_parts.append(raw[position:])
    body = b"".join(body_parts)
    piece_starts = [body_at for body_at, _ in pieces]

    def arrival(body_offset: int) -> float:
        index = bisect.bisect_right(piece_starts, body_offset) - 1
        body_at, raw_at = pieces[index]
        read = bisect.bisect_right(ends, raw_at + body_offset - body_at)
        return reads[min(read, len(reads) - 1)][0]

    events: list[Event] = []
    start = 0
    while True:
        end = body.find(b"\n\n", start)
        if end < 0:
            break
        fields: dict[str, str] = {}
        for line in body[start:end].decode("utf-8").split("\n"):
            if line.startswith(":"):
                continue  # a comment (keepalive)
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "event" in fields or "data" in fields:
            data = fields.get("data", "")
            events.append(
                Event(
                    fields.get("id", ""),
                    fields.get("event", "message"),
                    json.loads(data) if data else None,
                    arrival(end + 1),
                )
            )
        start = end + 2
    first_bytes = reads[0][0] if reads else 0.0
    return SseAnswer(status, headers, events, first_bytes, len(reads))
