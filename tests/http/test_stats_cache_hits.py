"""Cache-hit POSTs are counted in memory and appear in the statistics, every one, once a flush wrote them.

The hot path pays no Redis round trip for its statistics: ``/metrics`` and ``/api/v1/stats/*`` show a
burst of cache hits after the recorder's next flush (about a second later in the daemon), exactly.
"""

from __future__ import annotations

import pytest_twisted

from asud.http.state import AsudApp
from tests.http.client import LiveServer
from tests.http.conftest import finish_build
from tests.http.helpers import build_body
from tests.http.test_metrics import samples

HITS = 25


@pytest_twisted.ensureDeferred
async def test_n_cache_hits_are_n_in_the_statistics_after_the_flush(server: LiveServer,
                                                                   asud_app: AsudApp) -> None:
    body = build_body(client="burst/1")
    queued = await server.client.post("/api/v1/build", json=body)
    assert queued.status_code == 202
    await finish_build(asud_app, queued.json()["request_hash"])
    first = await server.client.post("/api/v1/build", json=body)  # the full path finds it done
    assert first.status_code == 200
    assert await asud_app.stats.flush()
    before = samples((await server.client.get("/metrics")).text)

    for _ in range(HITS):  # answered from memory by the fast path
        answer = await server.client.post("/api/v1/build", json=body)
        assert answer.status_code == 200 and answer.content == first.content
    assert asud_app.stats.pending() == HITS  # counted, not written: no Redis call per request

    assert await asud_app.stats.flush()
    after = samples((await server.client.get("/metrics")).text)
    assert after["asud_cache_hits_total"] - before["asud_cache_hits_total"] == HITS
    assert after["asud_build_requests_total"] - before["asud_build_requests_total"] == HITS
    assert after["asud_cache_misses_total"] == before["asud_cache_misses_total"]
    targets = (await server.client.get("/api/v1/stats/popular_targets")).json()
    assert {entry["target"]: entry["count"] for entry in targets}["x86"] == HITS + 2  # + the 202 and the 200
