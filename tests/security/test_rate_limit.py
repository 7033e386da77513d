"""Per-client limits on build POSTs: a rate per minute (429 + Retry-After) and a bound on queued builds, by
client address — the ``client`` field cannot be used to dodge them. The limiter's own behaviour (counters
shared by every daemon through Redis, failing open when Redis is down) is tested in
``tests/store/test_rate_limit.py``; here the daemon answers real requests on a real socket.

Requests claim another client address with ``X-Forwarded-For``, which asud trusts from loopback only (a
reverse proxy on the same host).
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess, daemon_settings
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

_SIZES = itertools.count(500)


@pytest.fixture(scope="module")
def limited_server(demo_tree: DemoTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A daemon that builds nothing (every accepted build stays queued), 3 POSTs a minute, 2 queued."""
    require_executable("redis-server")
    directory = tmp_path_factory.mktemp("limited")
    settings = daemon_settings(demo_tree, directory / "data", build={"workers": 0},
                               requests={"rate_limit_per_minute": 3, "max_pending_per_client": 2})
    daemon = DaemonProcess(directory, settings)
    daemon.start()
    try:
        yield daemon.url
    finally:
        daemon.stop()


def body(**overrides: Any) -> dict[str, Any]:
    return {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": [],
            "rootfs_size_mb": next(_SIZES), "client": "rate-tests/1", **overrides}


def post(url: str, address: str, document: dict[str, Any] | None = None,
         **overrides: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/api/v1/build", data=json.dumps(document or body(**overrides)).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": address},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def assert_limited(answer: tuple[int, dict[str, str], dict[str, Any]]) -> None:
    status, headers, document = answer
    assert status == 429, document
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert document["status"] == 429 and isinstance(document["detail"], str)


def test_rate_per_minute_by_address(limited_server: str) -> None:
    # max_pending_per_client=2 would stop the third queued build, so the third POST repeats the first.
    first = body()
    for _ in range(2):
        assert post(limited_server, "203.0.113.7", first)[0] == 202
    assert post(limited_server, "203.0.113.7", rootfs_size_mb=first["rootfs_size_mb"])[0] == 202
    # The fourth in a minute is refused, whatever the client calls itself.
    for name in ("rate-tests/1", "luci/other", "owut/9"):
        assert_limited(post(limited_server, "203.0.113.7", client=name))
    # Another address is not affected; an IPv6 neighbour in the same /64 counts as the same client.
    assert post(limited_server, "198.51.100.9")[0] == 202
    for suffix in ("1", "2", "3"):
        post(limited_server, f"2001:db8:1:2::{suffix}", rootfs_size_mb=first["rootfs_size_mb"])
    assert_limited(post(limited_server, "2001:db8:1:2::ffff"))


def test_queued_builds_per_client_are_bounded(limited_server: str) -> None:
    address = "192.0.2.44"
    assert post(limited_server, address)[0] == 202
    kept = body()
    assert post(limited_server, address, kept)[0] == 202
    assert_limited(post(limited_server, address))  # a third queued build of this client
    # A request for a build that already exists is never refused by the queue bound.
    assert post(limited_server, "192.0.2.45", rootfs_size_mb=kept["rootfs_size_mb"])[0] == 202
