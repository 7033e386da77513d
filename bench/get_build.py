"""GET ``/api/v1/build/<hash>`` of a finished build against a bare ``twisted.web`` ``Resource`` answering
the same bytes with the same headers (``bench.bare``), one process each, the same wrk settings."""

from __future__ import annotations

from bench.ceilings import alternate, bare_resource
from bench.client import Http
from bench.context import Context
from bench.load import WrkRun, wrk
from bench.profile import profiled
from bench.results import Figure

#: Target of issue 15: this share of the bare Resource, same run, same load generator.
MIN_RATIO = 0.90


def run(context: Context) -> Figure:
    mode = context.mode
    figure = Figure(
        "GET /api/v1/build/<hash>, finished build",
        f"wrk -t{mode.wrk_threads} -c{mode.wrk_connections}, {mode.wrk_seconds:.0f} s per run, "
        f"{mode.wrk_runs} runs alternating with the ceiling: a bare `twisted.web` `Resource` "
        "(`bench/bare.py`, `isLeaf`, no access log) answering the daemon's body bytes with the daemon's "
        "headers from memory, in its own process; medians and their ratio. Daemon: one `twist asud` "
        "process, access log off, one build slot (idle), its own redis-server.",
        f"≥ {MIN_RATIO:.2f} x bare Resource",
    )
    if context.finished_hash is None:
        figure.value = "skipped: no finished build (cold build failed)"
        figure.met = False
        return figure
    path = f"/api/v1/build/{context.finished_hash}"
    url = context.daemon.url + path
    with Http(context.daemon.url) as client:
        answer = client.get(path)
    if answer.status != 200:
        raise RuntimeError(f"GET {path} answered {answer.status}")
    figure.details.append(f"answer: {answer.status}, {len(answer.body):,} bytes of JSON")

    def load(target: str) -> WrkRun:
        return wrk(
            target, seconds=mode.wrk_seconds, connections=mode.wrk_connections, threads=mode.wrk_threads
        )

    with bare_resource(answer, context.world.work, "bare-get") as bare:
        with Http(bare.url) as client:
            assert client.get(path).body == answer.body
        compared = alternate(mode.wrk_runs, lambda: load(url), lambda: load(bare.url + path), figure.details)
    figure.value = f"{compared.ours_rps:,.0f} req/s = {compared.ratio:.2f} x bare"
    figure.ceiling = f"bare Resource {compared.bare_rps:,.0f} req/s"
    figure.met = compared.ratio >= MIN_RATIO and compared.errors == 0
    if compared.errors:
        figure.details.append(f"{compared.errors} bad responses or socket errors in the daemon's runs")
    if context.profile:
        figure.details += profiled(context.daemon.pid, lambda: load(url), mode.wrk_seconds)
    return figure
