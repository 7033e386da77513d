"""A finished build's status is answered by the fast path exactly as the route answers it."""

from __future__ import annotations

import pytest_twisted

from asud.http.state import AsudApp
from tests.http.client import LiveServer
from tests.http.conftest import finish_build
from tests.http.helpers import build_body

#: Headers whose values both paths must agree on (Date is the clock's).
COMPARED = (
    "content-type",
    "content-length",
    "x-imagebuilder-status",
    "x-queue-position",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-expose-headers",
)


@pytest_twisted.ensureDeferred
async def test_fast_path_answers_like_the_route(server: LiveServer, asud_app: AsudApp) -> None:
    body = build_body(packages=["luci", "tcpdump"], client="fast-path/1")
    request_hash = (await server.client.post("/api/v1/build", json=body)).json()["request_hash"]
    await finish_build(asud_app, request_hash)
    url = f"/api/v1/build/{request_hash}"
    asud_app.finished.discard(request_hash)
    routed = await server.client.get(url)  # a miss: the route renders it and keeps it in memory
    assert routed.status_code == 200 and asud_app.finished.get(request_hash) is not None

    fast = await server.client.get(f"{url}?1700000000")  # LuCI's timestamp query; served from memory
    assert fast.status_code == 200 and fast.content == routed.content
    assert fast.json()["status"] == 200 and fast.json()["request_hash"] == request_hash
    for name in COMPARED:
        assert fast.headers.get(name) == routed.headers.get(name), name

    head = await server.client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["x-imagebuilder-status"] == "done"
    assert head.headers["content-length"] == str(len(routed.content))


@pytest_twisted.ensureDeferred
async def test_fast_path_answers_are_timed_under_the_route(server: LiveServer, asud_app: AsudApp) -> None:
    seen: list[tuple[str, str, int]] = []
    asud_app.observers.append(lambda method, route, status, _seconds: seen.append((method, route, status)))
    request_hash = (await server.client.post("/api/v1/build", json=build_body())).json()["request_hash"]
    await finish_build(asud_app, request_hash)
    await server.client.get(f"/api/v1/build/{request_hash}")  # routed
    await server.client.get(f"/api/v1/build/{request_hash}")  # fast
    await server.client.get("/nothing")
    assert seen == [
        ("POST", "/api/v1/build", 202),
        ("GET", "/api/v1/build/{request_hash}", 200),
        ("GET", "/api/v1/build/{request_hash}", 200),
        ("GET", "unmatched", 404),
    ]


@pytest_twisted.ensureDeferred
async def test_unknown_and_unfinished_builds_still_reach_the_route(server: LiveServer) -> None:
    missing = await server.client.get(f"/api/v1/build/{'0' * 64}")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    body = build_body(packages=["htop"], client="fast-path/2")
    queued = await server.client.post("/api/v1/build", json=body)
    again = await server.client.get(f"/api/v1/build/{queued.json()['request_hash']}")
    assert again.status_code == 202 and again.json()["detail"] == "queued"


@pytest_twisted.ensureDeferred
async def test_status_in_body_is_never_answered_from_memory(server: LiveServer, asud_app: AsudApp) -> None:
    request_hash = (await server.client.post("/api/v1/build", json=build_body())).json()["request_hash"]
    await finish_build(asud_app, request_hash)
    await server.client.get(f"/api/v1/build/{request_hash}")
    answer = await server.client.get(f"/api/v1/build/{request_hash}?status_in_body=1")
    assert answer.status_code == 200 and answer.json()["status"] == 200


@pytest_twisted.ensureDeferred
async def test_hash_lookalikes_take_the_route(server: LiveServer, asud_app: AsudApp) -> None:
    """The fast path looks a segment up without checking it is hex: an uppercase spelling of a finished
    hash, or 64 bytes that are not ASCII, must still get the route's own answer."""
    request_hash = (await server.client.post("/api/v1/build", json=build_body())).json()["request_hash"]
    await finish_build(asud_app, request_hash)
    assert (await server.client.get(f"/api/v1/build/{request_hash}")).status_code == 200
    fast_path_answer = (await server.client.get(f"/api/v1/build/{request_hash}")).json()
    assert fast_path_answer["request_hash"] == request_hash

    upper = await server.client.get(f"/api/v1/build/{request_hash.upper()}")
    assert upper.status_code != 200 and upper.json()["status"] == upper.status_code
    not_ascii = await server.client.get("/api/v1/build/" + "%FF" * 64)
    assert not_ascii.status_code in (400, 404) and not_ascii.json()["status"] == not_ascii.status_code
