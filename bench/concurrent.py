"""100 identical build requests at the same moment make exactly one build."""

from __future__ import annotations

from collections import Counter

from bench.client import Http, post_and_wait, request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.load import release_together
from bench.machine import loadavg
from bench.results import Figure


def run(context: Context) -> Figure:
    count = context.mode.concurrent_requests
    figure = Figure(
        f"{count} concurrent identical requests",
        f"{count} POSTs of one new selection, each from its own thread on its own connection (opened "
        "beforehand), released together by a barrier; build records counted in the daemon's Redis before "
        "and after; then the build is awaited.",
        "exactly 1 build",
    )
    figure.details.append(f"load average before: {loadavg()}")
    body = request_body(VERSION, TARGET, PROFILE, context.fresh_packages(), "bench/concurrent")
    with context.world.redis(context.daemon) as redis:
        before = redis.builds()
        answers = release_together(
            context.daemon.url, count, lambda client: client.post("/api/v1/build", body)
        )
        builds = redis.builds() - before
    statuses = Counter(answer.status for answer in answers)
    hashes = {(answer.json() or {}).get("request_hash") for answer in answers}
    figure.value = f"{builds} build(s)"
    figure.met = builds == 1 and set(statuses) <= {200, 202}
    figure.details.append("answers: " + ", ".join(f"{status}x{n}" for status, n in sorted(statuses.items())))
    figure.details.append(f"distinct request hashes answered: {len(hashes)}")
    with Http(context.daemon.url) as client:
        waited = post_and_wait(client, body)
    figure.details.append(f"the one build finished {waited.status} after {waited.seconds:.2f} s more")
    return figure
