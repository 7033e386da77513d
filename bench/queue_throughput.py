"""Queue throughput: N distinct builds submitted at once, with 1 and with 2 embedded workers.

Each worker count gets its own ``sysup serve --workers W`` on the same data directory (warm ImageBuilder).
First one build alone (the single build time), then N distinct builds POSTed back to back and polled until
all are 200; throughput is N ÷ (first POST → last 200), compared with W ÷ single build time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from bench.client import post_and_wait, request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.machine import loadavg
from bench.results import Figure

#: Target of the issue: at least this share of the ideal W ÷ single build time.
MIN_EFFICIENCY = 0.90
WORKER_COUNTS = (1, 2)


def busy_cores() -> tuple[float, float]:
    """``(busy, total)`` CPU seconds of the whole machine so far (``/proc/stat``): every process counts,
    sandboxed build processes included, whose CPU time no parent's rusage sees."""
    values = [
        int(value) for value in Path("/proc/stat").read_text(encoding="utf-8").split("\n", 1)[0].split()[1:]
    ]
    idle = values[3] + values[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks


def _drain(client: httpx.Client, url: str, hashes: list[str], timeout: float = 600.0) -> None:
    pending = set(hashes)
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} builds not finished after {timeout:.0f} s")
        for request_hash in sorted(pending):
            answer = client.get(f"{url}/api/v1/build/{request_hash}")
            if answer.status_code == 200:
                pending.discard(request_hash)
            elif answer.status_code != 202:
                raise RuntimeError(f"build {request_hash} failed: {answer.text[:300]}")
        time.sleep(0.05)


def run(context: Context) -> Figure:
    count = context.mode.queue_builds
    figure = Figure(
        "queue throughput",
        f"per worker count W: a fresh `sysup serve --workers W` on the warm data directory; one build alone "
        f"(single build time), then {count} distinct selections POSTed back to back and polled every 50 ms "
        "until all are 200; throughput = builds ÷ (first POST → last 200).",
        f"≥ {MIN_EFFICIENCY:.0%} of W ÷ single build time, W = 1 and 2",
    )
    single: float | None = None
    values = []
    met = True
    for workers in WORKER_COUNTS:
        server = context.world.serve(workers=workers, name=f"queue-w{workers}")
        try:
            with httpx.Client(timeout=30) as client:
                alone = post_and_wait(
                    client,
                    server.url,
                    request_body(
                        VERSION, TARGET, PROFILE, context.fresh_packages(), f"bench/queue-{workers}"
                    ),
                )
                if alone.status != 200:
                    raise RuntimeError(f"build failed: {alone.body.get('detail')}")
                single = single if single is not None else alone.seconds
                figure.details.append(
                    f"W={workers}: load average {loadavg()}; one build alone {alone.seconds:.2f} s"
                )
                started = time.perf_counter()
                busy_before, total_before = busy_cores()
                hashes = []
                for _ in range(count):
                    answer = client.post(
                        f"{server.url}/api/v1/build",
                        json=request_body(
                            VERSION, TARGET, PROFILE, context.fresh_packages(), f"bench/queue-{workers}"
                        ),
                    )
                    if answer.status_code not in (200, 202):
                        raise RuntimeError(f"POST answered {answer.status_code}: {answer.text[:300]}")
                    hashes.append(answer.json()["request_hash"])
                _drain(client, server.url, hashes)
                elapsed = time.perf_counter() - started
                busy_after, total_after = busy_cores()
                busy_share = (busy_after - busy_before) / max(1e-9, total_after - total_before)
        finally:
            server.stop()
            context.world.servers.remove(server)
        throughput = count / elapsed
        ideal = workers / single
        efficiency = throughput / ideal
        met = met and efficiency >= MIN_EFFICIENCY
        values.append(f"W={workers}: {throughput * 60:.1f} builds/min = {efficiency:.2f} x ideal")
        figure.details.append(
            f"W={workers}: the machine's {os.cpu_count()} cores were {busy_share:.0%} busy during the builds "
            f"(all processes: builds, server, this bench's polling, other users); load average {loadavg()}"
        )
        figure.details.append(
            f"W={workers}: {count} builds in {elapsed:.1f} s = {throughput:.3f} builds/s; ideal "
            f"{workers} ÷ {single:.2f} s = {ideal:.3f} builds/s; efficiency {efficiency:.2f}"
        )
    figure.value = "; ".join(values)
    figure.met = met
    return figure
