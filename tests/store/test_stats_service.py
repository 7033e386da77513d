"""A stopping daemon (SIGTERM: ``stopService``) writes the request statistics it still holds in memory."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from asud.service import makeService
from asud.store.stats_queries import StatsQueries
from tests.catalog.helpers import demo_config
from tests.http.client import StubClient
from tests.http.helpers import build_body
from tests.store.stats_support import connect
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

REQUESTS = 5


@pytest_twisted.ensureDeferred
async def test_stopping_the_daemon_writes_the_counted_requests(demo_tree: DemoTree, tmp_path: Path,
                                                               redis_server: RedisProcess) -> None:
    config = demo_config(demo_tree, data_dir=str(tmp_path / "data"), redis={"url": redis_server.url},
                         http={"listen": []}, build={"workers": 0, "sandbox": "none"})
    service = makeService(config)
    service.startService()
    stopped = False
    try:
        await service.started
        client = StubClient(service.resource)
        for _ in range(REQUESTS):  # queued (no workers): each one counted as a miss
            answer = await client.post("/api/v1/build", json=build_body(client="stopping/1"))
            assert answer.status_code == 202, answer.text
        await service.stopService()
        stopped = True
    finally:
        if not stopped:
            await service.stopService()
    assert service.app.stats.pending() == 0
    redis = connect(redis_server.url)
    try:
        totals = await StatsQueries(redis).totals()
        assert (totals.requests, totals.cache_misses) == (REQUESTS, REQUESTS)
        assert await StatsQueries(redis).popular_clients() == [("stopping/1", REQUESTS)]
    finally:
        await redis.disconnect()
