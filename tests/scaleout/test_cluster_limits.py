"""Fairness and overload counted across the cluster: the pending limits live in Redis (the submit script
counts ``asud:queued`` and ``asud:queued:clients``), so two daemons share one per-client limit and one
total limit. Past the per-client limit a client gets 429 + ``Retry-After`` from either daemon; past the
total limit the v1 API answers 529 and the 2017 API 503, both with ``Retry-After``; a request for a build
already queued still joins it. Clients are told apart by address (``X-Forwarded-For`` from loopback);
the daemons run no workers here, so the queue holds still while counted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.scaleout.cluster import IN_PROGRESS, Cluster, build_body
from tests.support.daemon import HttpAnswer

pytestmark = pytest.mark.slow

PER_CLIENT, TOTAL = 2, 3


def _call(url: str, body: dict[str, Any], client: str) -> HttpAnswer:
    """POST ``body`` as the router at ``client`` behind a proxy on loopback (``X-Forwarded-For``: the
    address the limits count by)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "X-Forwarded-For": client})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return HttpAnswer(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, dict(error.headers), error.read())


def _post(url: str, size: int, client: str) -> HttpAnswer:
    return _call(f"{url}/api/v1/build", build_body(rootfs_size_mb=size), client)


def _legacy_body() -> dict[str, Any]:
    return {"distro": "openwrt", "version": "24.10.4", "target": "ath79", "subtarget": "generic",
            "board": "tplink,archer-c7-v5", "packages": ["luci"], "client": "legacy-router/1"}


def test_pending_limits_are_counted_cluster_wide(cluster: Cluster) -> None:
    limits = {"requests": {"max_pending_jobs": TOTAL, "max_pending_per_client": PER_CLIENT}}
    a, b = (cluster.daemon(name, workers=0, **limits) for name in ("node-a", "node-b"))

    assert _post(a.url, 501, "192.0.2.1").status == IN_PROGRESS
    assert _post(b.url, 502, "192.0.2.1").status == IN_PROGRESS  # the client's second, on the other daemon
    refused = [_post(url, 503, "192.0.2.1") for url in (a.url, b.url)]
    for answer in refused:  # its third, on either daemon: over the per-client limit counted in Redis
        assert answer.status == 429, answer
        assert int(answer.header("Retry-After") or 0) > 0
    assert _post(b.url, 501, "192.0.2.1").status == IN_PROGRESS  # the same build again joins it: no new one

    assert _post(b.url, 504, "192.0.2.2").status == IN_PROGRESS  # the third build: the queue is full now
    overloaded = [_post(url, 505, "192.0.2.3") for url in (a.url, b.url)]
    for answer in overloaded:
        assert answer.status == 529, answer
        assert int(answer.header("Retry-After") or 0) > 0
    legacy = [_call(f"{url}/api/build-request", _legacy_body(), "192.0.2.4") for url in (a.url, b.url)]
    for answer in legacy:
        assert answer.status == 503, answer
        assert int(answer.header("Retry-After") or 0) > 0

    assert len(cluster.keys("asud:build:*")) == TOTAL
    assert cluster.command("XLEN", "asud:queue") == TOTAL
    print(f"\nFIGURES limits: daemons=2 per_client={PER_CLIENT} total={TOTAL} queued={TOTAL} "
          f"refused_429={len(refused)} refused_529_v1={len(overloaded)} refused_503_2017={len(legacy)}")
