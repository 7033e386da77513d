"""Queue throughput: N distinct builds submitted at once, with 1 and with 2 build slots.

Each worker count W gets its own daemon (``[build] workers = W``) on the same data directory (warm
ImageBuilder). First one build alone (the single build time), then N distinct builds POSTed back to back
and polled until all are 200; throughput is N ÷ (first POST → last 200), compared with the ceiling
W ÷ single build time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.client import Http, post_and_wait, request_body, submit_all, wait_all
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


def run(context: Context) -> Figure:
    count = context.mode.queue_builds
    figure = Figure(
        "queue throughput",
        f"per worker count W: a fresh daemon with `[build] workers = W` on the warm data directory; one "
        f"build alone (single build time), then {count} distinct selections POSTed back to back and polled "
        "(one at a time in submission order, every 50 ms) until all are 200; throughput = builds ÷ "
        "(first POST → last 200); ceiling = W ÷ single build time (the W=1 daemon's).",
        f"≥ {MIN_EFFICIENCY:.2f} x W ÷ build time, W = 1 and 2",
    )
    world = context.world
    single: float | None = None
    values: list[str] = []
    ceilings: list[str] = []
    met = True
    for workers in WORKER_COUNTS:
        daemon = world.start_daemon(workers=workers, name=f"queue-w{workers}")
        try:
            with Http(daemon.url) as client:
                body = request_body(
                    VERSION, TARGET, PROFILE, context.fresh_packages(), f"bench/queue-{workers}"
                )
                alone = post_and_wait(client, body)
                if alone.status != 200:
                    raise RuntimeError(f"build failed: {alone.body.get('detail')}")
                single = single if single is not None else alone.seconds
                figure.details.append(
                    f"W={workers}: load average {loadavg()}; one build alone {alone.seconds:.2f} s"
                )
                bodies = [
                    request_body(VERSION, TARGET, PROFILE, context.fresh_packages(), f"bench/queue-{workers}")
                    for _ in range(count)
                ]
                with world.redis(daemon) as redis:
                    builds_before = redis.builds()
                    started = time.perf_counter()
                    busy_before, total_before = busy_cores()
                    wait_all(client, submit_all(client, bodies))
                    elapsed = time.perf_counter() - started
                    busy_after, total_after = busy_cores()
                    built = redis.builds() - builds_before
                if built != count:
                    raise RuntimeError(f"{count} selections made {built} builds: not all distinct images")
                busy_share = (busy_after - busy_before) / max(1e-9, total_after - total_before)
                cpu_per_build = (busy_after - busy_before) / count
        finally:
            world.stop_daemon(daemon)
        throughput = count / elapsed
        ideal = workers / single
        efficiency = throughput / ideal
        met = met and efficiency >= MIN_EFFICIENCY
        values.append(f"W={workers}: {throughput * 60:.1f} builds/min = {efficiency:.2f} x ideal")
        ceilings.append(f"W={workers}: {ideal * 60:.1f} builds/min")
        figure.details.append(
            f"W={workers}: the machine's {os.cpu_count()} cores were {busy_share:.0%} busy during the builds "
            f"(all processes: builds, daemon, this bench's polling, other users); load average {loadavg()}"
        )
        cores = os.cpu_count() or 1
        figure.details.append(
            f"W={workers}: {cpu_per_build:.2f} CPU-seconds of the whole machine per build; {cores} cores "
            f"could give at most {cores / max(cpu_per_build, 1e-9):.3f} builds/s at that cost (the ideal "
            f"asks {ideal:.3f})"
        )
        figure.details.append(
            f"W={workers}: {count} builds in {elapsed:.1f} s = {throughput:.3f} builds/s; ideal "
            f"{workers} ÷ {single:.2f} s = {ideal:.3f} builds/s; efficiency {efficiency:.2f}"
        )
    figure.value = "; ".join(values)
    figure.ceiling = "; ".join(ceilings)
    figure.met = met
    return figure
