"""``kill -9`` of a worker in the middle of a build, and a full stop/start of the cluster with builds queued.

The lease on the build record expires (3 s here), a surviving worker's reaper re-queues the build, and it
finishes there. The client polling all along sees only 202 and then 200: never an error, never stuck.
"""

from __future__ import annotations

import pytest

from tests.scaleout.cluster import wait_for
from tests.scaleout.conftest import Cluster
from tests.scaleout.polling import DONE, IN_PROGRESS, Poller, build_body, submit

pytestmark = pytest.mark.slow


def _started_by(cluster: Cluster, pid: int) -> bool:
    rows = cluster.sql("SELECT lease_owner FROM builds WHERE status = 'started'")
    return any(owner and owner.split(":")[1] == str(pid) for (owner,) in rows)


def test_killed_worker_build_is_rerun_elsewhere(cluster: Cluster) -> None:
    api = cluster.api()
    victim = cluster.worker("worker-victim")
    hashes = [submit(api.url, build_body(rootfs_size_mb=size)) for size in (201, 202)]
    pollers = [Poller([api.url], request_hash) for request_hash in hashes]
    for poller in pollers:
        poller.start()

    # Mid-build: the victim holds the lease of a started build (the cold ImageBuilder cache makes it long).
    wait_for(lambda: _started_by(cluster, victim.pid), 60, "the victim to start a build", interval=0.05)
    victim.kill()
    orphaned = cluster.sql("SELECT id FROM builds WHERE status = 'started'")
    assert len(orphaned) == 1, "the kill must land while a build is running"

    cluster.worker("worker-survivor")
    for poller in pollers:
        assert poller.result() == DONE, cluster.logs()
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}, poller.statuses
        assert poller.final is not None and poller.final["images"]

    rows = cluster.sql("SELECT id, status, attempts FROM builds ORDER BY id")
    assert [status for _, status, _ in rows] == ["done", "done"]
    attempts = {build_id: attempts for build_id, _, attempts in rows}
    assert attempts[orphaned[0][0]] == 2  # killed once, re-run once
    polls = sum(len(poller.statuses) for poller in pollers)
    print(f"\nFIGURES worker-kill: builds=2 killed=1 rerun=1 lost=0 polls={polls}")


def test_queued_builds_survive_a_full_restart(cluster: Cluster) -> None:
    api = cluster.api()
    hashes = [submit(api.url, build_body(rootfs_size_mb=size)) for size in (211, 212, 213)]
    worker = cluster.worker()
    # One build under way, two waiting: then everything stops (a normal stop, as systemd does it).
    wait_for(lambda: cluster.sql("SELECT 1 FROM builds WHERE status = 'started'"), 60, "a build to start",
             interval=0.05)
    worker.stop()
    api.stop()
    assert cluster.sql("SELECT count(*) FROM builds WHERE status <> 'done'")[0][0] >= 2

    api = cluster.api("api-again")
    cluster.worker("worker-again")
    pollers = [Poller([api.url], request_hash) for request_hash in hashes]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        assert poller.result() == DONE, cluster.logs()
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}
    assert [row[0] for row in cluster.sql("SELECT status FROM builds")] == ["done"] * 3
    rerun = cluster.sql("SELECT count(*) FROM builds WHERE attempts > 1")[0][0]
    print(f"\nFIGURES restart: builds=3 interrupted={rerun} lost=0")
