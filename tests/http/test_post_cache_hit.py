"""A repeated POST of a built image is answered from memory (the cache hit), and counted."""

from __future__ import annotations

import pytest_twisted

from asud.http.state import AsudApp
from tests.http.client import StubClient
from tests.http.conftest import finish_build, set_status
from tests.http.helpers import build_body


async def _cache_hits(app: AsudApp) -> int:
    await app.stats.flush()
    return int((await app.stats_queries.totals()).cache_hits)


@pytest_twisted.ensureDeferred
async def test_repeated_post_of_a_built_image_is_answered_from_memory(
    client: StubClient, asud_app: AsudApp
) -> None:
    body = build_body()
    queued = await client.post("/api/v1/build", json=body)
    assert queued.status_code == 202
    request_hash = queued.json()["request_hash"]
    await finish_build(asud_app, request_hash)
    before = await _cache_hits(asud_app)

    first = await client.post("/api/v1/build", json=body)  # the full path finds it done
    assert first.status_code == 200 and first.json()["request_hash"] == request_hash
    # Redis now says otherwise; an answer that still says "done" can only come from memory.
    await set_status(asud_app, request_hash, "queued")
    again = await client.post("/api/v1/build", json={**body, "client": "another-client/2"})
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["x-imagebuilder-status"] == "done"

    other = await client.post("/api/v1/build", json=build_body())  # another request: the full path
    assert other.status_code == 202
    assert await _cache_hits(asud_app) == before + 2
    await set_status(asud_app, request_hash, "done")


@pytest_twisted.ensureDeferred
async def test_only_a_done_build_is_answered_from_memory(client: StubClient, asud_app: AsudApp) -> None:
    body = build_body()
    before = await _cache_hits(asud_app)
    request_hash = (await client.post("/api/v1/build", json=body)).json()["request_hash"]
    assert (await client.post("/api/v1/build", json=body)).status_code == 202  # queued: asked again
    await set_status(asud_app, request_hash, "failed")
    assert (await client.post("/api/v1/build", json=body)).status_code == 500
    assert await _cache_hits(asud_app) == before
