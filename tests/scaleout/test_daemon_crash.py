"""``kill -9`` of a daemon in the middle of a build, and a full stop/start of the cluster with builds queued.

The killed daemon's queue entry is not renewed any more; after the lease (3 s here) the surviving daemon
claims it (``XAUTOCLAIM``) and builds it; the killed daemon, started again, removes the workspace its
dead run left. A daemon stopped with SIGTERM hands its running build back to the
queue. The client polling all along sees only 202 and then 200: never an error, never stuck.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest

from tests.scaleout.cluster import DONE, IN_PROGRESS, Cluster, Poller, build_body, submit, wait_for
from tests.support.daemon import http_call

pytestmark = pytest.mark.slow


def _verified_image(url: str, final: dict[str, object]) -> bool:
    """The sysupgrade image of a finished build downloads from ``url`` with the sha256 its answer names."""
    images = final["images"]
    assert isinstance(images, list)
    image = next(entry for entry in images if entry["type"] == "sysupgrade")
    answer = http_call(f"{url}/store/{final['bin_dir']}/{image['name']}")
    return answer.status == 200 and hashlib.sha256(answer.body).hexdigest() == image["sha256"]


def _workspaces(root: Path) -> list[Path]:
    """The build workspaces (directories) under a daemon's ``workspaces/``."""
    return sorted(path for path in root.glob("ws-*") if path.is_dir()) if root.is_dir() else []


def test_killed_daemon_build_is_rerun_elsewhere(cluster: Cluster) -> None:
    survivor = cluster.daemon("survivor")
    victim = cluster.daemon("victim")
    requested = [build_body(rootfs_size_mb=size) for size in (201, 202)]
    hashes = [submit(survivor.url, body) for body in requested]
    pollers = [Poller([survivor.url], request_hash) for request_hash in hashes]
    for poller in pollers:
        poller.start()

    # Mid-build: the victim holds a started build (each daemon takes one; the victim's cache is cold) and
    # its workspace, which a SIGKILLed daemon cannot remove.
    victim_workspaces = cluster.root / "victim" / "data" / "workspaces"
    wait_for(lambda: cluster.started_by("victim") and _workspaces(victim_workspaces), 60,
             "the victim to start a build in a workspace", interval=0.02)
    victim.kill()
    orphaned = cluster.started_by("victim")
    assert len(orphaned) == 1, "the kill must land while a build is running"
    left = _workspaces(victim_workspaces)
    assert len(left) == 1

    for poller in pollers:
        assert poller.result() == DONE, (poller.final, cluster.logs())
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}, poller.statuses
        assert poller.final is not None and poller.final["images"]
        assert _verified_image(survivor.url, poller.final)

    records = {record["image_key"]: record for record in cluster.builds()}
    assert sorted(record["status"] for record in records.values()) == ["done", "done"]
    assert {record["node"] for record in records.values()} == {"survivor"}
    rerun = records[orphaned[0]["image_key"]]
    assert rerun["attempts"] == "2"  # killed once, re-run once
    runs = sum(int(record["attempts"]) for record in records.values())
    assert runs == len(requested) + 1  # nothing built twice but the one that was killed
    assert cluster.command("XLEN", "asud:queue") == 0  # every entry acknowledged
    polls = sum(len(poller.statuses) for poller in pollers)

    # The victim starts again on its data directory: its build pool removes the dead run's workspace.
    victim_again = cluster.daemon("victim")
    wait_for(lambda: "removed 1 workspace(s) left by a daemon" in victim_again.log_text(), 60,
             "the restarted victim to remove the stale workspace")
    assert _workspaces(victim_workspaces) == [] and not list(victim_workspaces.glob("ws-*.lock"))
    print(f"\nFIGURES daemon-kill: requested={len(requested)} built={len(records)} killed=1 rerun=1 lost=0 "
          f"duplicated={runs - len(requested) - 1} answers_5xx=0 polls={polls}")


def test_queued_builds_survive_a_full_restart(cluster: Cluster) -> None:
    daemons = [cluster.daemon("node-a"), cluster.daemon("node-b")]
    requested = [build_body(rootfs_size_mb=size) for size in range(211, 217)]
    hashes = [submit(daemons[index % 2].url, body) for index, body in enumerate(requested)]
    # Builds under way, others waiting: then everything stops (a normal stop, as systemd does it).
    wait_for(lambda: cluster.started_by("node-a") or cluster.started_by("node-b"), 60, "a build to start",
             interval=0.05)
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
    for daemon in daemons:
        assert daemon.wait(60) == -signal.SIGTERM, daemon.log_text()[-3000:]
    statuses = cluster.statuses()
    assert len([status for status in statuses if status != "done"]) >= 2
    assert "started" not in statuses  # a clean stop hands the running builds back
    assert cluster.command("XLEN", "asud:queue") == len(requested) - statuses.count("done")

    again = [cluster.daemon("node-a"), cluster.daemon("node-b")]
    urls = [daemon.url for daemon in again]
    pollers = [Poller(urls, request_hash) for request_hash in hashes]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        assert poller.result() == DONE, (poller.final, cluster.logs())
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}, poller.statuses
        assert poller.final is not None and _verified_image(urls[1], poller.final)
    records = cluster.builds()
    assert [record["status"] for record in records] == ["done"] * len(requested)
    attempts = [int(record["attempts"]) for record in records]
    interrupted = sum(1 for count in attempts if count > 1)
    assert interrupted >= 1 and max(attempts) == 2  # each handed-back build ran once more, none twice more
    assert cluster.command("XLEN", "asud:queue") == 0
    for daemon in again:
        assert "Traceback" not in daemon.log_text(), daemon.log_text()[-3000:]
    print(f"\nFIGURES restart: requested={len(requested)} built={len(records)} interrupted={interrupted} "
          f"lost=0 duplicated={sum(attempts) - len(requested) - interrupted} answers_5xx=0")
