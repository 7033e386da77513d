"""A daemon that has been idle picks a new build up at once: its pool waits on the queue with a blocking
read (``XREADGROUP … BLOCK``) that a new entry wakes, not on a polling interval that grew while idle.

Ported from sysup's ``tests/builds/test_runtime.py`` (the embedded Huey consumer's idle polling was capped
at 0.25 s, so a build after a quiet spell started within 0.55 s). Here each of three builds, each after a
quiet spell longer than one blocking read, must leave "queued" within ``STARTS_WITHIN``: a pool that only
looked every two seconds would miss that bound in most rounds.
"""

from __future__ import annotations

import time

import pytest

from asud.build.pool import TAKE_BLOCK
from tests.scaleout.cluster import DONE, Cluster, Poller, build_body, wait_for
from tests.support.daemon import http_call

pytestmark = pytest.mark.slow

#: Seconds from the POST until the build is no longer queued.
STARTS_WITHIN = 0.6
ROUNDS = 3


def test_a_build_after_a_quiet_spell_starts_at_once(cluster: Cluster) -> None:
    daemon = cluster.daemon("node-a")
    waited: list[float] = []
    for number in range(ROUNDS):
        time.sleep(TAKE_BLOCK * 1.25)  # quiet: at least one blocking read ended empty
        posted = time.monotonic()
        answer = http_call(f"{daemon.url}/api/v1/build", build_body(rootfs_size_mb=401 + number))
        assert answer.status == 202, answer.body
        request_hash = answer.json()["request_hash"]

        def started(request_hash: str = request_hash) -> bool:
            status = http_call(f"{daemon.url}/api/v1/build/{request_hash}").header("X-Imagebuilder-Status")
            return status != "queued"

        wait_for(started, 10, "the build to start", interval=0.01)
        waited.append(time.monotonic() - posted)
        poller = Poller([daemon.url], request_hash)
        poller.start()
        assert poller.result() == DONE, (poller.final, cluster.logs())
    assert max(waited) < STARTS_WITHIN, waited
    print(f"\nFIGURES idle-pickup: rounds={ROUNDS} quiet={TAKE_BLOCK * 1.25:.1f}s "
          f"started_within={max(waited):.2f}s requested={ROUNDS} built={ROUNDS} lost=0")
