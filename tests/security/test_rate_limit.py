"""Per-client limits on build POSTs: a rate per minute (429 + Retry-After) and a bound on queued builds, by
client address — the ``client`` field cannot be used to dodge them. Counters in Redis are shared by every API
process."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysup.api.rate_limit import RedisRateLimiter
from tests.scaleout.cluster import RedisServer
from tests.support.requirements import require_executable

_SIZES = itertools.count(500)


def body(**overrides: Any) -> dict[str, Any]:
    return {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": [],
            "rootfs_size_mb": next(_SIZES), "client": "rate-tests/1", **overrides}


def post(url: str, address: str, **overrides: Any) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/build", json=body(**overrides),
                      headers={"X-Forwarded-For": address}, timeout=30)


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    answer = response.json()
    assert answer["status"] == 429 and isinstance(answer["detail"], str)


def test_rate_per_minute_by_address(limited_server: str) -> None:
    # max_pending_per_client=2 would stop the third queued build, so the third POST repeats the first.
    first = body()
    for _ in range(2):
        assert httpx.post(f"{limited_server}/api/v1/build", json=first,
                          headers={"X-Forwarded-For": "203.0.113.7"}, timeout=30).status_code == 202
    assert post(limited_server, "203.0.113.7", rootfs_size_mb=first["rootfs_size_mb"]).status_code == 202
    # The fourth in a minute is refused, whatever the client calls itself.
    for name in ("rate-tests/1", "luci/other", "owut/9"):
        assert_limited(post(limited_server, "203.0.113.7", client=name))
    # Another address is not affected; an IPv6 neighbour in the same /64 counts as the same client.
    assert post(limited_server, "198.51.100.9").status_code == 202
    for suffix in ("1", "2", "3"):
        post(limited_server, f"2001:db8:1:2::{suffix}", rootfs_size_mb=first["rootfs_size_mb"])
    assert_limited(post(limited_server, "2001:db8:1:2::ffff"))


def test_queued_builds_per_client_are_bounded(limited_server: str) -> None:
    address = "192.0.2.44"
    assert post(limited_server, address).status_code == 202
    kept = body()
    assert httpx.post(f"{limited_server}/api/v1/build", json=kept, headers={"X-Forwarded-For": address},
                      timeout=30).status_code == 202
    assert_limited(post(limited_server, address))  # a third queued build of this client
    # A request for a build that already exists is never refused by the queue bound.
    assert post(limited_server, "192.0.2.45", rootfs_size_mb=kept["rootfs_size_mb"]).status_code == 202


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    require_executable("redis-server")
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_redis_counters_are_shared_by_api_processes(redis_url: str) -> None:
    one, two = RedisRateLimiter(redis_url, 3), RedisRateLimiter(redis_url, 3)
    window_left = 60 - time.time() % 60
    if window_left < 2:  # do not straddle a window boundary
        time.sleep(window_left + 0.1)
    assert [one.hit("ip:192.0.2.1"), two.hit("ip:192.0.2.1"), one.hit("ip:192.0.2.1")] == [None] * 3
    wait = two.hit("ip:192.0.2.1")
    assert wait is not None and 1 <= wait <= 60
    assert one.hit("ip:192.0.2.2") is None


def test_redis_down_fails_open() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", 1)
    assert limiter.hit("ip:192.0.2.1") is None and limiter.hit("ip:192.0.2.1") is None
