"""POST of an impossible package selection: answered at once (validation before queueing), never queued."""

from __future__ import annotations

from bench.client import request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.load import sample_latency
from bench.machine import loadavg
from bench.results import Figure, percentile

#: Target of the issue.
MAX_P99_MS = 50.0
#: Two of the ``wpad-*`` trio, which conflict with each other.
CONFLICTING = ["wpad-basic-mbedtls", "wpad-mini"]


def run(context: Context) -> Figure:
    count = context.mode.impossible_requests
    figure = Figure(
        "POST of an impossible package selection",
        f"{count:,} POSTs one after another over one keep-alive connection (httpx), each timed from send "
        f"to full answer; builds counted in the database before and after. Selection: "
        f"{' + '.join(CONFLICTING)} (they conflict) on {VERSION} {TARGET} {PROFILE}.",
        f"p99 < {MAX_P99_MS:.0f} ms; 0 builds queued",
    )
    figure.details.append(f"load average before: {loadavg()}")
    body = request_body(VERSION, TARGET, PROFILE, CONFLICTING, "bench/impossible")
    before = context.world.count_builds()
    sampled = sample_latency(f"{context.server.url}/api/v1/build", requests=count, body=body)
    queued = context.world.count_builds() - before
    p50, p90, p99 = (percentile(sampled.latencies_ms, share) for share in (0.50, 0.90, 0.99))
    worst = max(sampled.latencies_ms)
    figure.value = f"p99 {p99:.1f} ms (p50 {p50:.1f}, max {worst:.1f}); {queued} builds queued"
    statuses = ", ".join(f"{status}x{n}" for status, n in sorted(sampled.statuses.items()))
    figure.details.append(f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms")
    figure.details.append(f"answers: {statuses}")
    only_4xx = all(400 <= status < 500 for status in sampled.statuses)
    figure.met = p99 < MAX_P99_MS and queued == 0 and only_4xx
    if not only_4xx:
        figure.details.append("some answers were not 4xx: the selection was not refused at once")
    figure.details.append(f"load average after: {loadavg()}")
    return figure
