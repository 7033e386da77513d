"""Queue throughput with 1, 2 and 3 daemons of one worker each on one Redis: builds per minute, and that as
a share of the ideal (N daemons x 60 / the time one build takes alone).

One cluster grows from one daemon to three. Each phase first warms the daemons that joined (N builds for
N idle daemons: each takes one, so each has its ImageBuilder unpacked), then submits :data:`PER_DAEMON`
x N different builds at once and measures from the submission to the last result. The solo build time
is the mean build time (record ``started_at`` → ``finished_at``) of the one-daemon phase. The machine
has 2 cores shared with other work, so three daemons compete for CPU: the share says how much of that
shows. The table is printed (``-s``); the test asserts only that every build was done, once: on a
shared machine the figures move with the neighbours' load, so no speed is asserted.
"""

from __future__ import annotations

import time
from statistics import mean

import pytest

from tests.scaleout.cluster import DONE, Cluster, Poller, build_body, submit

pytestmark = pytest.mark.slow

#: Builds per daemon in each measured phase.
PER_DAEMON = 8


def _run(cluster: Cluster, urls: list[str], sizes: list[int]) -> tuple[float, set[str]]:
    """Submit one build per size (round-robin over ``urls``) at once; seconds until all are done, and
    their request hashes."""
    started = time.monotonic()
    hashes = [submit(urls[index % len(urls)], build_body(rootfs_size_mb=size))
              for index, size in enumerate(sizes)]
    pollers = [Poller(urls, request_hash, interval=0.1, timeout=600) for request_hash in hashes]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        assert poller.result() == DONE, (poller.final, cluster.logs())
    return time.monotonic() - started, set(hashes)


def _build_seconds(cluster: Cluster, hashes: set[str]) -> list[float]:
    """Each build's own time (a worker's start to its result) for the requests ``hashes``."""
    return [float(record["finished_at"]) - float(record["started_at"]) for record in cluster.builds()
            if record["status"] == "done" and record["request_hash"] in hashes]


def test_throughput_with_one_two_and_three_daemons(cluster: Cluster) -> None:
    urls: list[str] = []
    rows = []
    solo = 0.0
    size = 700
    for count in (1, 2, 3):
        while len(urls) < count:
            urls.append(cluster.daemon(f"node-{len(urls) + 1}").url)
        joined = count - (rows[-1][0] if rows else 0)
        warm = list(range(size, size + (count if joined else 0)))
        size += len(warm)
        _run(cluster, urls, warm)  # every daemon idle takes one: each has its ImageBuilder unpacked
        sizes = list(range(size, size + PER_DAEMON * count))
        size += len(sizes)
        wall, hashes = _run(cluster, urls, sizes)
        seconds = _build_seconds(cluster, hashes)
        assert len(seconds) == len(sizes)
        if count == 1:
            solo = mean(seconds)
        per_minute = len(sizes) * 60 / wall
        ideal = count * 60 / solo
        rows.append((count, len(sizes), wall, mean(seconds), per_minute, ideal, per_minute / ideal))
    records = cluster.builds()
    assert all(record["status"] == "done" and record["attempts"] == "1" for record in records)
    print(f"\nTHROUGHPUT (solo build {solo:.2f} s; 1 worker per daemon; 2 shared cores)")
    print("daemons builds  wall_s  mean_build_s  builds/min  ideal/min  share")
    for count, built, wall, build_mean, per_minute, ideal, share in rows:
        print(f"{count:7d} {built:6d} {wall:7.1f} {build_mean:13.2f} {per_minute:11.1f} {ideal:10.1f} "
              f"{share:6.0%}")
