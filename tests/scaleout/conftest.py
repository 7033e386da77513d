"""Scale-out fixtures: ``cluster`` (per test) starts a private append-only ``redis-server`` and gives the
test a :class:`~tests.scaleout.cluster.Cluster` to start ``twist asud`` daemons on it; every daemon and the
server are stopped afterwards. Needs ``redis-server`` and ``bwrap`` (a failure under ``CI=true``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scaleout.cluster import Cluster
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["cluster", "demo_tree", "demo_upstream_url"]


@pytest.fixture
def cluster(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
            demo_tree: DemoTree) -> Iterator[Cluster]:
    executable = require_executable("redis-server", "redis-server")
    require_executable("bwrap", "bubblewrap")
    # Append-only, as the daemon's own redis-server: a restarted server keeps the builds and the queue.
    # (A short directory: unix socket paths are limited to 107 bytes.)
    redis = RedisProcess(executable, tmp_path_factory.mktemp("redis", numbered=True), appendonly=True)
    redis.start()
    made = Cluster(tmp_path, redis, demo_tree)
    try:
        yield made
    finally:
        made.close()
