"""POST ``/api/v1/build`` of a request whose image is built already (the cache hit), under wrk, against a
bare ``twisted.web`` ``Resource`` answering the same POST with the daemon's bytes and headers.

Every request goes the daemon's whole POST way for a cache hit (body read and checked, the answer found,
statistics counted) and must be answered 200 with the finished build.
"""

from __future__ import annotations

from bench.ceilings import alternate, bare_resource
from bench.client import Http
from bench.context import Context
from bench.load import WrkRun, wrk
from bench.profile import profiled
from bench.results import Figure

#: Target of issue 15: this share of the bare Resource (same bytes, same run, same load generator).
MIN_RATIO = 0.60


def run(context: Context) -> Figure:
    mode = context.mode
    figure = Figure(
        "POST /api/v1/build, cache hit",
        f"wrk -t{mode.wrk_threads} -c{mode.wrk_connections} with the finished build's request as JSON "
        f"body, {mode.wrk_seconds:.0f} s per run, {mode.wrk_runs} runs alternating with the ceiling: the "
        "bare `Resource` of `bench/bare.py` answering the same POST with the daemon's answer bytes and "
        "headers; medians and their ratio. Every daemon answer must be 200.",
        f"≥ {MIN_RATIO:.2f} x bare Resource",
    )
    body = context.finished_body
    if body is None or context.finished_hash is None:
        figure.value = "skipped: no finished build"
        figure.met = False
        return figure
    path = "/api/v1/build"
    with Http(context.daemon.url) as client:
        answer = client.post(path, body)
    if answer.status != 200:
        raise RuntimeError(f"POST of the finished request answered {answer.status}")
    figure.details.append(f"answer: {answer.status}, {len(answer.body):,} bytes of JSON")

    def load(url: str) -> WrkRun:
        return wrk(
            url,
            seconds=mode.wrk_seconds,
            connections=mode.wrk_connections,
            threads=mode.wrk_threads,
            method="POST",
            body=body,
        )

    with bare_resource(answer, context.world.work, "bare-post") as bare:
        compared = alternate(
            mode.wrk_runs,
            lambda: load(context.daemon.url + path),
            lambda: load(bare.url + path),
            figure.details,
        )
    figure.value = f"{compared.ours_rps:,.0f} req/s = {compared.ratio:.2f} x bare"
    figure.ceiling = f"bare Resource {compared.bare_rps:,.0f} req/s"
    figure.met = compared.ratio >= MIN_RATIO and compared.errors == 0
    if compared.errors:
        figure.details.append(
            f"{compared.errors} non-200 answers or socket errors (every answer must be 200)"
        )
    if context.profile:
        figure.details += profiled(
            context.daemon.pid, lambda: load(context.daemon.url + path), mode.wrk_seconds
        )
    return figure
