"""Three daemons on one Redis and one store: a burst of identical requests, a daemon frozen past its lease,
Redis gone for five seconds with builds queued.

* 100 identical POSTs released together over three daemons: one build record, one stream entry, one run.
* ``SIGSTOP`` of the daemon running a build, for longer than its lease (3 s): another daemon claims the
  entry (``XAUTOCLAIM``) and builds it; the frozen one, resumed with ``SIGCONT``, finds its writes refused
  (the record is written only by the node that holds it) and the result stays the other node's.
* ``redis-server`` stopped for 5 s while builds wait in the queue: every request meanwhile is a 503 with
  ``Retry-After`` (promptly), and every queued build is done afterwards, none lost, none built twice
  beyond the one that met the outage mid-build.

Each test prints a ``FIGURES`` line for the fault table of issue 14.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from typing import Any

import pytest

from tests.scaleout.cluster import (
    DONE,
    IN_PROGRESS,
    LEASE_TIMEOUT,
    Cluster,
    Poller,
    build_body,
    submit,
    wait_for,
)
from tests.support.daemon import http_call

pytestmark = pytest.mark.slow

#: Identical POSTs released at the same moment, spread over the three daemons.
BURST = 100
#: Seconds ``redis-server`` stays away in the outage test (issue 14: "stopped for 5 s").
OUTAGE = 5.0
#: A refusal while Redis is away must come within this ([redis] timeout is 1 s).
REFUSED_WITHIN = 2.0


def _verified_image(url: str, final: dict[str, Any]) -> bool:
    """The sysupgrade image of a finished build downloads from ``url`` with the sha256 its answer names."""
    image = next(entry for entry in final["images"] if entry["type"] == "sysupgrade")
    answer = http_call(f"{url}/store/{final['bin_dir']}/{image['name']}")
    return answer.status == 200 and hashlib.sha256(answer.body).hexdigest() == image["sha256"]


def _entries_added(cluster: Cluster) -> int:
    """How many entries were ever added to the queue stream (acknowledged ones are deleted)."""
    flat = cluster.command("XINFO", "STREAM", "asud:queue")
    return int(dict(zip(flat[::2], flat[1::2], strict=True))["entries-added"])


def test_hundred_identical_posts_over_three_daemons_make_one_build(cluster: Cluster) -> None:
    daemons = [cluster.daemon(f"node-{name}") for name in "abc"]
    before = _entries_added(cluster)
    body = build_body(rootfs_size_mb=401)
    start = threading.Barrier(BURST)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def race(index: int) -> None:
        start.wait(timeout=60)
        answer = http_call(f"{daemons[index % 3].url}/api/v1/build", body, timeout=60)
        with lock:
            answers.append((answer.status, answer.json().get("request_hash", "")))

    threads = [threading.Thread(target=race, args=(index,)) for index in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(answers) == BURST
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {IN_PROGRESS, DONE}, statuses  # 200 only if the build was already done
    assert len({request_hash for _, request_hash in answers}) == 1
    assert len(cluster.keys("asud:build:*")) == 1
    assert len(cluster.keys("asud:request:*")) == 1
    assert _entries_added(cluster) - before == 1  # one stream entry for the one build

    poller = Poller([daemon.url for daemon in daemons], answers[0][1])
    poller.start()
    assert poller.result() == DONE, (poller.final, cluster.logs())
    assert poller.final is not None and _verified_image(daemons[1].url, poller.final)
    (record,) = cluster.builds()
    assert record["status"] == "done" and record["attempts"] == "1"
    assert _entries_added(cluster) - before == 1 and cluster.command("XLEN", "asud:queue") == 0
    print(f"\nFIGURES burst: requested={BURST} daemons=3 built=1 stream_entries=1 lost=0 duplicated=0 "
          f"answers_5xx={sum(1 for status in statuses if status >= 500)}")


def test_a_daemon_frozen_past_its_lease_does_not_overwrite_the_result(cluster: Cluster) -> None:
    frozen = cluster.daemon("frozen")
    request_hash = submit(frozen.url, build_body(rootfs_size_mb=402))
    wait_for(lambda: cluster.started_by("frozen"), 60, "the build to start on 'frozen'", interval=0.05)
    frozen.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        taker = cluster.daemon("taker")
        poller = Poller([taker.url], request_hash)
        poller.start()
        assert poller.result() == DONE, (poller.final, cluster.logs())
        assert time.monotonic() - stopped_at > LEASE_TIMEOUT  # taken over only after the lease
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}, poller.statuses
    finally:
        frozen.signal(signal.SIGCONT)
    (record,) = cluster.builds()
    assert record["status"] == "done" and record["node"] == "taker" and record["attempts"] == "2", record
    final = poller.final
    assert final is not None

    # Resumed, the frozen daemon's reactor runs again (it answers), its renewal learns the entry is the
    # taker's and its build stops; whatever it tries to write is refused. Give it a few renewals' time.
    wait_for(lambda: http_call(f"{frozen.url}/api/v1/build/{request_hash}", timeout=10).status == DONE,
             30, "the resumed daemon to answer")
    time.sleep(3 * LEASE_TIMEOUT)
    (after,) = cluster.builds()
    assert after == record, (record, after)  # not overwritten: same node, status, times, result
    answer = http_call(f"{frozen.url}/api/v1/build/{request_hash}").json()
    assert answer["images"] == final["images"]
    assert _verified_image(frozen.url, final) and _verified_image(taker.url, final)
    assert cluster.command("XLEN", "asud:queue") == 0 and cluster.command(
        "XPENDING", "asud:queue", "builders")[0] == 0
    assert frozen.process is not None and frozen.process.poll() is None
    print("\nFIGURES sigstop: requested=1 built=1 (by taker, attempts=2) lost=0 duplicated=0 "
          "overwritten_by_resumed=0 answers_5xx=0")


def test_redis_away_five_seconds_mid_queue_loses_nothing(cluster: Cluster) -> None:
    daemons = [cluster.daemon("node-a"), cluster.daemon("node-b")]
    queued = [build_body(rootfs_size_mb=size) for size in range(411, 417)]
    hashes = [submit(daemons[index % 2].url, body) for index, body in enumerate(queued)]
    wait_for(lambda: cluster.started_by("node-a") or cluster.started_by("node-b"), 60, "a build to start",
             interval=0.05)
    assert "queued" in cluster.statuses()  # builds wait in the stream when Redis goes

    cluster.redis.stop()
    down_since = time.monotonic()
    seen: list[tuple[int, float]] = []
    turn = 0
    while time.monotonic() - down_since < OUTAGE:  # a client asking all along, bounded by the outage
        url = daemons[turn % 2].url
        started = time.monotonic()
        if turn % 2:
            answer = http_call(f"{url}/api/v1/build", build_body(rootfs_size_mb=420), timeout=20)
        else:
            answer = http_call(f"{url}/api/v1/build/{hashes[turn % len(hashes)]}", timeout=20)
        seen.append((answer.status, time.monotonic() - started))
        assert answer.status == 503 and int(answer.header("Retry-After") or 0) > 0, answer
        turn += 1
        time.sleep(0.25)
    cluster.redis.start()
    late = submit(daemons[0].url, build_body(rootfs_size_mb=420))  # the refused request, asked again

    pollers = [Poller([daemon.url for daemon in daemons], request_hash, timeout=240)
               for request_hash in [*hashes, late]]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        assert poller.result() == DONE, (poller.final, cluster.logs())
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}, poller.statuses
    for daemon in daemons:
        assert daemon.process is not None and daemon.process.poll() is None  # the same processes
    records = cluster.builds()
    assert [record["status"] for record in records] == ["done"] * (len(queued) + 1)
    runs = sum(int(record["attempts"]) for record in records)
    # A build running when Redis went may have met the outage (its store check): taken again after the
    # lease, so run twice; with two daemons at most two such builds. Nothing else runs more than once.
    assert runs <= len(records) + 2, records
    assert cluster.command("XLEN", "asud:queue") == 0
    slowest = max(seconds for _, seconds in seen)
    assert slowest < REFUSED_WITHIN, seen
    print(f"\nFIGURES redis-5s: requested={len(records)} built={len(records)} lost=0 "
          f"rerun={runs - len(records)} duplicated=0 answers_5xx={len(seen)} "
          f"(503 while Redis was away, slowest {slowest:.2f}s)")
