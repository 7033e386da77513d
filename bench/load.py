"""Load generators: wrk for throughput and latency under load, plain threads for what wrk cannot do
(requests released at one moment, a paced sampler beside a build burst).

wrk is the Debian package; each run is bounded by its ``-d`` duration (plus a timeout of our own).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import Answer, Http
from bench.results import percentile

__all__ = ["Paced", "WrkRun", "head_load", "parse_wrk", "release_together", "wrk"]

#: Lua for a wrk run with another method and, optionally, one fixed JSON body with every request.
_SCRIPT = """
wrk.method = "{method}"
{body}
"""
_BODY = """wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: requests per second, latency (ms), bytes per second and the error counts."""

    requests_per_second: float
    latency_avg_ms: float
    latency_p99_ms: float
    requests: int
    bad_responses: int
    socket_errors: int
    #: ``Transfer/sec`` in bytes.
    bytes_per_second: float = 0.0

    def describe(self) -> str:
        transfer = f", {self.bytes_per_second / 1e6:,.0f} MB/s" if self.bytes_per_second > 50e6 else ""
        return (
            f"{self.requests_per_second:,.0f} req/s{transfer}, avg {self.latency_avg_ms:.2f} ms, "
            f"p99 {self.latency_p99_ms:.2f} ms, {self.requests:,} requests, "
            f"{self.bad_responses} non-2xx/3xx, {self.socket_errors} socket errors"
        )


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return 0.0
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def _bytes(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)([KMGT]?)B", text)
    if not match:
        return 0.0
    return float(match.group(1)) * float(1024 ** " KMGT".index(match.group(2) or " "))


def parse_wrk(output: str) -> WrkRun:
    """The numbers of ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", output)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return WrkRun(
        requests_per_second=float(rps.group(1)),
        latency_avg_ms=_ms(latency.group(1)) if latency else 0.0,
        latency_p99_ms=_ms(p99.group(1)) if p99 else 0.0,
        requests=int(total.group(1)),
        bad_responses=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(value) for value in errors.groups()) if errors else 0,
        bytes_per_second=_bytes(transfer.group(1)) if transfer else 0.0,
    )


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    method: str = "GET",
    body: Any | None = None,
) -> WrkRun:
    """Run wrk against ``url`` for ``seconds``; with ``body`` every request carries it as JSON."""
    argv = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        if body is not None or method != "GET":
            script = Path(scratch) / "request.lua"
            body_lines = _BODY.format(body=json.dumps(json.dumps(body))) if body is not None else ""
            script.write_text(_SCRIPT.format(method=method, body=body_lines), encoding="utf-8")
            argv += ["-s", str(script)]
        run = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr or run.stdout}")
    return parse_wrk(run.stdout)


async def _head_loop(
    host: str, port: int, path: str, until: float, latencies: list[float], statuses: dict[int, int]
) -> int:
    """One keep-alive connection sending HEAD after HEAD until ``until``; the number of socket errors."""
    request = f"HEAD {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    try:
        while loop.time() < until:
            started = loop.time()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            latencies.append((loop.time() - started) * 1000)
            status = int(head.split(b" ", 2)[1])
            statuses[status] = statuses.get(status, 0) + 1
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        return 1
    finally:
        writer.close()
    return 0


def head_load(url: str, *, seconds: float, connections: int = 32) -> WrkRun:
    """HEAD requests on ``connections`` keep-alive connections for ``seconds`` (wrk 4.1 cannot: it waits
    for a body after the headers of a HEAD answer). Numbers as wrk's, for the same report."""
    parts = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    if parts is None:
        raise ValueError(f"not an http://HOST:PORT/path URL: {url}")
    host, port, path = parts.group(1), int(parts.group(2)), parts.group(3)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def all_connections() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        errors = await asyncio.gather(
            *(
                _head_loop(host, port, path, started + seconds, latencies, statuses)
                for _ in range(connections)
            )
        )
        return loop.time() - started, sum(errors)

    elapsed, errors = asyncio.run(all_connections())
    requests = len(latencies)
    return WrkRun(
        requests_per_second=requests / elapsed if elapsed else 0.0,
        latency_avg_ms=sum(latencies) / requests if requests else 0.0,
        latency_p99_ms=percentile(latencies, 0.99),
        requests=requests,
        bad_responses=sum(count for status, count in statuses.items() if not 200 <= status < 400),
        socket_errors=errors,
    )


def release_together(
    base_url: str, count: int, send: Callable[[Http], Answer], timeout: float = 60.0
) -> list[Answer]:
    """``count`` clients, each on its own connection (opened beforehand), send at the same moment."""
    barrier = threading.Barrier(count)
    answers: list[Answer | BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        client = Http(base_url, timeout=timeout)
        try:
            client.connect()  # the connection is open before the race
            barrier.wait(timeout)
            answer: Answer | BaseException = send(client)
        except BaseException as error:  # reported with the answers
            answer = error
        finally:
            client.close()
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    failures = [answer for answer in answers if isinstance(answer, BaseException)]
    if failures or len(answers) != count:
        raise RuntimeError(f"{len(failures)} of {count} requests failed: {failures[:3]!r}")
    return [answer for answer in answers if isinstance(answer, Answer)]


@dataclass
class Paced:
    """A thread that GETs ``path`` every ``interval`` seconds over one keep-alive connection, timing each
    answer, until stopped; it never sends faster than that, so it measures the server, not a queue."""

    base_url: str
    path: str
    interval: float = 0.02
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with Http(self.base_url, timeout=30) as client:
            next_at = time.perf_counter()
            while not self._stop.is_set():
                started = time.perf_counter()
                answer = client.get(self.path)
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
                next_at = max(next_at + self.interval, time.perf_counter())
                self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def start(self) -> Paced:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
