"""100 identical build requests at the same moment make exactly one build."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from bench.client import post_and_wait, request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.machine import loadavg
from bench.results import Figure


async def _post_all(url: str, body: dict[str, object], count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        start = asyncio.Event()

        async def one() -> httpx.Response:
            await start.wait()
            return await client.post(url, json=body)

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


def run(context: Context) -> Figure:
    count = context.mode.concurrent_requests
    figure = Figure(
        f"{count} concurrent identical requests",
        f"{count} POSTs of one new selection released together (httpx.AsyncClient, {count} connections); "
        "builds counted in the database before and after; then the build is awaited.",
        "exactly 1 build",
    )
    figure.details.append(f"load average before: {loadavg()}")
    body = request_body(VERSION, TARGET, PROFILE, context.fresh_packages(), "bench/concurrent")
    before = context.world.count_builds()
    responses = asyncio.run(_post_all(f"{context.server.url}/api/v1/build", body, count))
    builds = context.world.count_builds() - before
    statuses = Counter(response.status_code for response in responses)
    hashes = {response.json().get("request_hash") for response in responses}
    figure.value = f"{builds} build(s)"
    figure.met = builds == 1 and set(statuses) <= {200, 202}
    figure.details.append("answers: " + ", ".join(f"{status}x{n}" for status, n in sorted(statuses.items())))
    figure.details.append(f"distinct request hashes answered: {len(hashes)}")
    with httpx.Client(timeout=30) as client:
        waited = post_and_wait(client, context.server.url, body)
    figure.details.append(f"the one build finished {waited.status} after {waited.seconds:.2f} s more")
    return figure
