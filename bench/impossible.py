"""POST of an impossible package selection under 20 concurrent clients: answered at once (validation
before queueing), never queued."""

from __future__ import annotations

from bench.client import Http, request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.load import wrk
from bench.machine import loadavg
from bench.profile import profiled
from bench.results import Figure

#: Target of issue 15.
MAX_P99_MS = 50.0
#: Two of the ``wpad-*`` trio, which conflict with each other.
CONFLICTING = ["wpad-basic-mbedtls", "wpad-mini"]


def run(context: Context) -> Figure:
    mode = context.mode
    clients = mode.invalid_connections
    figure = Figure(
        "POST of an impossible package selection",
        f"wrk -t{mode.wrk_threads} -c{clients} for {mode.invalid_seconds:.0f} s: {clients} clients, each "
        "sending its next POST as soon as the answer is in; latency distribution from wrk; build records "
        f"counted in the daemon's Redis before and after. Selection: {' + '.join(CONFLICTING)} (they "
        f"conflict) on {VERSION} {TARGET} {PROFILE}.",
        f"p99 < {MAX_P99_MS:.0f} ms with {clients} concurrent clients; 0 queued",
    )
    figure.details.append(f"load average before: {loadavg()}")
    body = request_body(VERSION, TARGET, PROFILE, CONFLICTING, "bench/impossible")
    with Http(context.daemon.url) as client:
        answer = client.post("/api/v1/build", body)
    figure.details.append(f"answer: {answer.status} {answer.json().get('detail', '')!s:.160}")
    with context.world.redis(context.daemon) as redis:
        before = redis.builds()
        run = wrk(
            f"{context.daemon.url}/api/v1/build",
            seconds=mode.invalid_seconds,
            connections=clients,
            threads=mode.wrk_threads,
            method="POST",
            body=body,
        )
        queued = redis.builds() - before
    figure.value = f"p99 {run.latency_p99_ms:.1f} ms (avg {run.latency_avg_ms:.1f}); {queued} queued"
    figure.details.append(run.describe())
    refused = 400 <= answer.status < 500 and run.bad_responses == run.requests and run.socket_errors == 0
    figure.met = run.latency_p99_ms < MAX_P99_MS and queued == 0 and refused
    if not refused:
        figure.details.append("some answers were not 4xx (or the connection failed): not refused at once")
    figure.details.append(f"load average after: {loadavg()}")
    if context.profile:
        figure.details += profiled(
            context.daemon.pid,
            lambda: wrk(
                f"{context.daemon.url}/api/v1/build",
                seconds=mode.invalid_seconds,
                connections=clients,
                threads=mode.wrk_threads,
                method="POST",
                body=body,
            ),
            mode.invalid_seconds,
        )
    return figure
