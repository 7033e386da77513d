"""Two API processes racing on one request; Redis restarted mid-run; PostgreSQL briefly unreachable."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.scaleout.cluster import PausableProxy, wait_for
from tests.scaleout.conftest import Cluster
from tests.scaleout.polling import DONE, IN_PROGRESS, Poller, build_body, submit

pytestmark = pytest.mark.slow

#: Identical POSTs sent at the same moment, spread over the API processes.
RACERS = 24


def test_two_api_processes_same_request_make_one_build(cluster: Cluster) -> None:
    apis = [cluster.api("api-1"), cluster.api("api-2")]
    body = build_body(rootfs_size_mb=301)
    start = threading.Barrier(RACERS)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def race(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            start.wait()
            response = client.post(f"{apis[index % 2].url}/api/v1/build", json=body)
        with lock:
            answers.append((response.status_code, response.json().get("request_hash", "")))

    threads = [threading.Thread(target=race, args=(index,)) for index in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == RACERS
    assert {status for status, _ in answers} == {IN_PROGRESS}
    assert len({request_hash for _, request_hash in answers}) == 1
    assert cluster.sql("SELECT count(*) FROM builds")[0][0] == 1
    assert cluster.sql("SELECT count(*) FROM build_requests")[0][0] == 1
    print(f"\nFIGURES same-request: posts={RACERS} api_processes=2 builds=1")


def test_redis_restart_mid_run(cluster: Cluster) -> None:
    api = cluster.api()
    worker = cluster.worker()
    first = submit(api.url, build_body(rootfs_size_mb=311))
    second = submit(api.url, build_body(rootfs_size_mb=312))  # waits in Redis behind the first
    wait_for(lambda: cluster.sql("SELECT 1 FROM builds WHERE status = 'started'"), 60, "a build to start",
             interval=0.05)

    waiting = cluster.sql("SELECT count(*) FROM builds WHERE status = 'queued'")[0][0]
    assert waiting == 1  # its task sits in Redis
    cluster.redis.stop()  # every queued task in Redis is gone with it (no persistence)
    during = submit(api.url, build_body(rootfs_size_mb=313))  # accepted: the database holds the build
    time.sleep(1.0)
    cluster.redis.start()

    pollers = [Poller([api.url], request_hash) for request_hash in (first, second, during)]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        assert poller.result() == DONE, cluster.logs()
        assert set(poller.statuses) <= {IN_PROGRESS, DONE}
    assert worker.alive() and api.alive(), "no crash loop: the same processes carry on"
    assert [row[0] for row in cluster.sql("SELECT status FROM builds")] == ["done"] * 3
    print("\nFIGURES redis-restart: builds=3 tasks_lost=2 (1 in Redis, 1 enqueue refused) builds_lost=0")


def test_postgres_unavailable_is_503_and_recovers(cluster: Cluster) -> None:
    proxy = PausableProxy(("127.0.0.1", 5432))
    proxy.start()
    cluster.proxy = proxy
    direct = cluster.database_url
    cluster.configure(database_url=direct.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
    api = cluster.api()
    status_url = f"{api.url}/api/v1/build/{'ab' * 32}"
    assert httpx.get(status_url, timeout=10).status_code == 404  # unknown hash: the database was asked

    proxy.pause()
    down = [httpx.get(status_url, timeout=20), httpx.post(f"{api.url}/api/v1/build",
                                                          json=build_body(rootfs_size_mb=321), timeout=20)]
    for response in down:
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0
        assert response.json()["status"] == 503

    proxy.resume()
    recovered = wait_for(lambda: httpx.get(status_url, timeout=10).status_code == 404, 30,
                         "the API to reach the database again")
    assert recovered and api.alive()
    assert submit(api.url, build_body(rootfs_size_mb=321))
    print("\nFIGURES postgres-down: answers_while_down=503 recovered_without_restart=yes")
