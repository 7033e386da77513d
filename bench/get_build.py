"""GET ``/api/v1/build/<hash>`` of a finished build against a bare FastAPI endpoint serving the same bytes.

Both servers run as one uvicorn process each (uvloop + httptools); wrk runs alternate between them so both
see the same background load, and the medians and their ratio come from the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from bench.context import Context
from bench.load import WrkRun, wrk
from bench.machine import loadavg
from bench.processes import Server, free_port, start_server
from bench.profile import profiled
from bench.results import Figure, median

#: Targets of the issue.
MIN_RATIO = 0.70
MIN_RPS = 7500.0


def bare_server(body_file: Path, log: Path) -> Server:
    """``bench.bare_app`` under uvicorn, one process, no access log."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return start_server(
        argv,
        port=port,
        ready_path="/api/v1/build/ready",
        log=log,
        env={"BENCH_BARE_BODY": str(body_file)},
        cwd=Path(__file__).resolve().parents[1],
    )


def run(context: Context) -> Figure:
    mode = context.mode
    figure = Figure(
        "GET /api/v1/build/<hash>, finished build",
        f"wrk, 1 thread, {mode.wrk_connections} connections, {mode.wrk_seconds:.0f} s per run, "
        f"{mode.wrk_runs} runs alternating with a bare FastAPI endpoint (`bench/bare_app.py`, the same "
        "pre-rendered JSON bytes from memory, one uvicorn process); medians and their ratio. Server: one "
        "`sysup serve --no-access-log` process with one embedded build worker (idle).",
        f"≥ {MIN_RATIO:.0%} of bare and ≥ {MIN_RPS:,.0f} req/s",
    )
    if context.finished_hash is None:
        figure.value = "skipped: no finished build (cold build failed)"
        figure.met = False
        return figure
    url = f"{context.server.url}/api/v1/build/{context.finished_hash}"
    answer = httpx.get(url, timeout=10)
    body_file = context.world.work / "finished-build.json"
    body_file.write_bytes(answer.content)
    figure.details.append(f"answer: {answer.status_code}, {len(answer.content):,} bytes of JSON")
    ours: list[WrkRun] = []
    bare: list[WrkRun] = []
    with bare_server(body_file, context.world.logs / "bare.log") as yardstick:
        bare_url = f"{yardstick.url}/api/v1/build/{context.finished_hash}"
        assert httpx.get(bare_url, timeout=10).content == answer.content
        for number in range(mode.wrk_runs):
            figure.details.append(f"run {number + 1}: load average before {loadavg()}")
            ours.append(wrk(url, seconds=mode.wrk_seconds, connections=mode.wrk_connections))
            bare.append(wrk(bare_url, seconds=mode.wrk_seconds, connections=mode.wrk_connections))
            figure.details.append(f"run {number + 1} sysup: {ours[-1].describe()}")
            figure.details.append(f"run {number + 1} bare:  {bare[-1].describe()}")
    rps = median([run.requests_per_second for run in ours])
    bare_rps = median([run.requests_per_second for run in bare])
    ratio = rps / bare_rps if bare_rps else 0.0
    errors = sum(run.bad_responses + run.socket_errors for run in ours)
    figure.value = f"{rps:,.0f} req/s = {ratio:.2f} x bare ({bare_rps:,.0f} req/s)"
    figure.met = ratio >= MIN_RATIO and rps >= MIN_RPS and errors == 0
    if errors:
        figure.details.append(f"{errors} bad responses or socket errors in the sysup runs")
    if context.profile:
        figure.details += profiled(
            context.server, lambda: wrk(url, seconds=mode.wrk_seconds, connections=mode.wrk_connections)
        )
    return figure
