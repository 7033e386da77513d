"""POST ``/api/v1/build`` of a request whose image is built already (the cache hit), under wrk.

Every request goes through the whole POST path (body parsing, validation against the catalog, dedupe,
statistics) and must be answered 200 with the finished build; it is compared with the GET figure of the
same run.
"""

from __future__ import annotations

from bench.context import Context
from bench.load import WrkRun, wrk
from bench.machine import loadavg
from bench.profile import profiled
from bench.results import Figure, median

#: Target of the issue: the cache-hit POST reaches half the GET figure.
MIN_SHARE_OF_GET = 0.50


def run(context: Context) -> Figure:
    mode = context.mode
    figure = Figure(
        "POST /api/v1/build, cache hit",
        f"wrk with the finished build's request as body, 1 thread, {mode.wrk_connections} connections, "
        f"{mode.wrk_seconds:.0f} s per run, {mode.wrk_runs} runs, each after a GET run of the finished build "
        "(same wrk settings), so both see the same background load; ratio of the medians.",
        f"≥ {MIN_SHARE_OF_GET:.0%} of the GET figure",
    )
    if context.finished_body is None or context.finished_hash is None:
        figure.value = "skipped: no finished build"
        figure.met = False
        return figure
    url = f"{context.server.url}/api/v1/build"
    get_url = f"{url}/{context.finished_hash}"
    runs: list[WrkRun] = []
    gets: list[WrkRun] = []
    for number in range(mode.wrk_runs):
        figure.details.append(f"run {number + 1}: load average before {loadavg()}")
        gets.append(wrk(get_url, seconds=mode.wrk_seconds, connections=mode.wrk_connections))
        runs.append(
            wrk(url, seconds=mode.wrk_seconds, connections=mode.wrk_connections, body=context.finished_body)
        )
        figure.details.append(f"run {number + 1} GET:  {gets[-1].describe()}")
        figure.details.append(f"run {number + 1} POST: {runs[-1].describe()}")
    rps = median([run.requests_per_second for run in runs])
    get_rps = median([run.requests_per_second for run in gets])
    share = rps / get_rps if get_rps else 0.0
    errors = sum(run.bad_responses + run.socket_errors for run in runs)
    figure.value = f"{rps:,.0f} req/s = {share:.2f} x GET ({get_rps:,.0f} req/s)"
    figure.met = share >= MIN_SHARE_OF_GET and errors == 0
    if errors:
        figure.details.append(f"{errors} non-200 answers or socket errors (every answer must be the 200)")
    if context.profile:
        figure.details += profiled(
            context.server,
            lambda: wrk(
                url, seconds=mode.wrk_seconds, connections=mode.wrk_connections, body=context.finished_body
            ),
        )
    return figure
