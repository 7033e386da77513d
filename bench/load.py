"""Load generators: wrk for throughput, a sequential keep-alive client for latency distributions.

wrk is the Debian package; each run is bounded by its ``-d`` duration (plus a timeout of our own).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

#: Lua for a wrk run that sends one fixed JSON body with every request.
_POST_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""

_UNITS = {"k": 1e3, "M": 1e6, "G": 1e9}
_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: requests per second, latency (ms) and the non-2xx/3xx and socket error counts."""

    requests_per_second: float
    latency_avg_ms: float
    latency_p99_ms: float
    requests: int
    bad_responses: int
    socket_errors: int

    def describe(self) -> str:
        return (
            f"{self.requests_per_second:,.0f} req/s, avg {self.latency_avg_ms:.2f} ms, "
            f"p99 {self.latency_p99_ms:.2f} ms, {self.requests:,} requests, "
            f"{self.bad_responses} non-2xx/3xx, {self.socket_errors} socket errors"
        )


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return 0.0
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """The numbers of ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    total = re.search(r"(\d+) requests in", output)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if rps is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return WrkRun(
        requests_per_second=float(rps.group(1)),
        latency_avg_ms=_ms(latency.group(1)) if latency else 0.0,
        latency_p99_ms=_ms(p99.group(1)) if p99 else 0.0,
        requests=int(total.group(1)),
        bad_responses=int(bad.group(1)) if bad else 0,
        socket_errors=sum(int(value) for value in errors.groups()) if errors else 0,
    )


def wrk(
    url: str, *, seconds: float, connections: int = 32, threads: int = 1, body: Any | None = None
) -> WrkRun:
    """Run wrk against ``url`` for ``seconds``; with ``body`` every request is a JSON POST of it.

    One wrk thread: the machine has two cores and the server under test needs one of them.
    """
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        if body is not None:
            script = Path(scratch) / "post.lua"
            script.write_text(_POST_SCRIPT.format(body=json.dumps(json.dumps(body))), encoding="utf-8")
            argv += ["-s", str(script)]
        run = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr or run.stdout}")
    return parse_wrk(run.stdout)


@dataclass(frozen=True)
class Sampled:
    """Per-request wall times (ms) and the status codes seen."""

    latencies_ms: list[float]
    statuses: dict[int, int]


def sample_latency(url: str, *, requests: int, body: Any | None = None, timeout: float = 10.0) -> Sampled:
    """Send ``requests`` requests one after another over one keep-alive connection, timing each."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=timeout) as client:
        for _ in range(requests):
            started = time.perf_counter()
            response = client.post(url, json=body) if body is not None else client.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return Sampled(latencies, statuses)
