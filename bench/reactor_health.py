"""Reactor health: a ``GET /json/v1/overview.json`` stays quick while a burst of builds runs.

Nothing may block the daemon's reactor — not spawning and reaping build processes, not their output
lines, not hashing and storing images, not the Redis traffic of the queue. A paced client (one keep-alive
connection, one GET every 20 ms, never more than one in flight) times every answer while N distinct
builds are POSTed back to back and run on a daemon with two build slots; p99 of those answers.
"""

from __future__ import annotations

import time

from bench.client import Http, request_body, submit_all, wait_all
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.load import Paced
from bench.machine import loadavg
from bench.results import Figure, percentile

#: Target of issue 15.
MAX_P99_MS = 50.0
WORKERS = 2
PATH = "/json/v1/overview.json"
#: The idle baseline before the burst (seconds of paced GETs, reported, not judged).
IDLE_SECONDS = 1.0


def _describe(latencies: list[float]) -> str:
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    worst = max(latencies, default=0.0)
    return f"{len(latencies)} answers, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"


def run(context: Context) -> Figure:
    count = context.mode.burst_builds
    figure = Figure(
        "reactor health",
        f"a daemon with `[build] workers = {WORKERS}` on the warm data directory; a paced client GETs "
        f"`{PATH}` every 20 ms over one keep-alive connection (one request in flight), first "
        f"{IDLE_SECONDS:.0f} s idle (baseline, reported), then while {count} distinct builds are POSTed back "
        "to back and run until all are 200 (polled one at a time in order, every 50 ms); p99 of the "
        "answers during the burst.",
        f"p99 < {MAX_P99_MS:.0f} ms during a {count}-build burst",
    )
    world = context.world
    daemon = world.start_daemon(workers=WORKERS, name="reactor-health")
    try:
        with Http(daemon.url) as client:
            answer = client.get(PATH)
            if answer.status != 200:
                raise RuntimeError(f"GET {PATH} answered {answer.status}")
            figure.details.append(f"answer: {answer.status}, {len(answer.body):,} bytes")
            idle = Paced(daemon.url, PATH).start()
            time.sleep(IDLE_SECONDS)
            idle.stop()
            figure.details.append(f"load average before the burst: {loadavg()}")
            bodies = [
                request_body(VERSION, TARGET, PROFILE, context.fresh_packages(), "bench/burst")
                for _ in range(count)
            ]
            with world.redis(daemon) as redis:
                builds_before = redis.builds()
                paced = Paced(daemon.url, PATH).start()
                started = time.perf_counter()
                try:
                    wait_all(client, submit_all(client, bodies))
                finally:
                    paced.stop()
                elapsed = time.perf_counter() - started
                built = redis.builds() - builds_before
            if built != count:
                raise RuntimeError(f"{count} selections made {built} builds: not all distinct images")
    finally:
        world.stop_daemon(daemon)
    p99 = percentile(paced.latencies_ms, 0.99)
    all_ok = set(paced.statuses) == {200}
    figure.value = f"p99 {p99:.1f} ms during the burst ({count} builds in {elapsed:.1f} s)"
    figure.ceiling = f"idle p99 {percentile(idle.latencies_ms, 0.99):.1f} ms"
    figure.met = p99 < MAX_P99_MS and all_ok
    figure.details.append(f"idle: {_describe(idle.latencies_ms)}")
    figure.details.append(f"burst: {_describe(paced.latencies_ms)}; statuses {paced.statuses}")
    figure.details.append(f"load average after: {loadavg()}")
    return figure
