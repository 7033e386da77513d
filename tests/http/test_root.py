"""The root's other cross-route rules: ``?status_in_body=1``, 413 over the body limit, JSON 404s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_twisted

from asud.http.state import AsudApp
from tests.http.client import LiveServer, StubClient, listening, raw_request
from tests.http.surfaces import hello_root

LIMIT = 1024 * 1024


@pytest_twisted.async_yield_fixture
async def server(bare_app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(hello_root(bare_app), max_body_bytes=LIMIT) as live:
        yield live


@pytest_twisted.ensureDeferred
async def test_status_in_body_answers_200_with_the_real_code(server: LiveServer) -> None:
    plain = await server.client.post("/api/status/400")
    assert plain.status_code == 400
    rewritten = await server.client.post(
        "/api/status/400?status_in_body=1", content=b"{}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert rewritten.status_code == 200 and rewritten.headers["x-asud-status"] == "400"
    assert rewritten.json() == {"status": 400, "seen": "application/json"}  # the form read as JSON
    for code in (200, 204):
        kept = await server.client.get(f"/api/status/{code}?status_in_body=1")
        assert kept.status_code == code and "x-asud-status" not in kept.headers
    off = await server.client.get("/api/status/404?status_in_body=0")
    assert off.status_code == 404
    not_api = await server.client.get("/json/x?status_in_body=1")
    assert not_api.status_code == 200 and "x-asud-status" not in not_api.headers


@pytest_twisted.ensureDeferred
async def test_huge_body_is_413(server: LiveServer) -> None:
    huge = b'{"packages": ["' + b"a" * (2 * LIMIT) + b'"]}'
    response = await server.client.post("/api/x", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"status": 413, "detail": f"Request body too large (limit {LIMIT} bytes)"}
    assert response.headers["access-control-allow-origin"] == "*"
    under = await server.client.post("/api/x", content=b" " * LIMIT)
    assert under.status_code == 200 and under.text == "hello"


@pytest_twisted.ensureDeferred
async def test_chunked_body_over_the_limit_is_413(server: LiveServer) -> None:
    """A body without Content-Length is counted as it arrives (and not kept past the limit)."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    from tests.http.client import _Collect

    protocol = _Collect()
    await connectProtocol(TCP4ClientEndpoint(reactor, server.host, server.port), protocol)
    chunk = b" " * 65536
    head = (f"POST /api/x HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    protocol.transport.write(head + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 32 + b"0\r\n\r\n")
    answer = await protocol.done
    assert answer.startswith(b"HTTP/1.1 413 ")


@pytest_twisted.ensureDeferred
async def test_the_limit_holds_in_a_site_that_is_not_ours(bare_app: AsudApp) -> None:
    """Embedders mount the resource in their own Site: the root still refuses the body."""
    client = StubClient(hello_root(bare_app))
    response = await client.post("/api/x", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413 and response.json()["status"] == 413


@pytest_twisted.ensureDeferred
async def test_unknown_paths_and_bad_encodings_are_json(server: LiveServer) -> None:
    missing = await server.client.get("/nothing/here")
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "title": "Not Found", "detail": "Not Found"}
    assert missing.headers["content-type"] == "application/json"
    inner = await server.client.get("/api//x")
    assert inner.status_code == 404 and inner.json()["status"] == 404
    status, body, _ = await raw_request(server, "GET", "/api/%c0%ae%c0%ae")
    assert status == 400 and b"Non-UTF-8" in body


def test_the_longest_prefix_wins_and_exact_mounts_match_alone(bare_app: AsudApp) -> None:
    from asud.http.root import MOUNTS, Mount

    def owner(path: str) -> str | None:
        for mount in sorted(MOUNTS, key=lambda m: -len(m.prefix)):
            if mount.matches(path):
                return f"{mount.module}:{mount.name}"
        return None

    assert owner("/api/v1/build/" + "0" * 64) == "asud.http.build:BuildApi"
    assert owner("/api/v1/stats") == "asud.http.meta:MetaApi"
    assert owner("/api/v1/stats/images") == "asud.http.stats:StatsApi"
    assert owner("/api/v1/upgrade-check/x") == "asud.http.upgrades:UpgradeApi"
    assert owner("/api/build-request") == "asud.http.legacy:LegacyApi"
    assert owner("/api/distros") == "asud.http.legacy_catalog:LegacyCatalog"
    assert owner("/") == "asud.http.web:WebPages"
    assert owner("/apiary") is None and owner("/storefront") is None
    assert Mount("/store", "m", "C").matches("/store") and not Mount("/", "m", "C", exact=True).matches("/x")


def test_a_surface_not_written_yet_is_left_out_but_a_broken_one_stops_the_daemon(bare_app: AsudApp) -> None:
    import pytest

    from asud.http.root import Mount, make_resource

    root = make_resource(bare_app, [Mount("/x", "asud.http.not_written_yet", "Nothing"),
                                    Mount("/docs", "asud.http.docs", "Docs")])
    assert [mount.prefix for mount, _ in root.surfaces] == ["/docs"]  # type: ignore[attr-defined]
    with pytest.raises(ModuleNotFoundError):
        make_resource(bare_app, [Mount("/x", "no_such_library_anywhere", "Nothing")])


@pytest_twisted.ensureDeferred
async def test_an_error_before_any_surface_is_json(bare_app: AsudApp) -> None:
    from asud.errors import Unavailable

    class Broken:
        def answer(self, request: object, segments: object) -> bytes:
            raise Unavailable("Redis is down")

    class Crashing:
        def answer(self, request: object, segments: object) -> bytes:
            raise RuntimeError("a bug")

    root = hello_root(bare_app)
    root.fast_path = Broken()
    unavailable = await StubClient(root).get("/api/x")
    assert unavailable.status_code == 503 and unavailable.json()["detail"] == "Redis is down"
    assert unavailable.headers["retry-after"] == "5"
    root.fast_path = Crashing()
    crashed = await StubClient(root).get("/api/x")
    assert crashed.status_code == 500
    assert crashed.json() == {"status": 500, "detail": "Internal Server Error"}


@pytest_twisted.ensureDeferred
async def test_observers_get_the_route_template_klein_dispatched_to(server: LiveServer,
                                                                    bare_app: AsudApp) -> None:
    """Named as the route is dispatched (one template per endpoint), matched again only when an endpoint
    serves several paths; never the raw path, ``unmatched`` when no route took the request."""
    seen: list[tuple[str, str, int]] = []
    bare_app.observers.append(lambda method, route, status, _seconds: seen.append((method, route, status)))
    await server.client.get("/api/status/418")
    await server.client.post("/api/status/201")
    await server.client.get("/api/v1/build")
    await server.client.get("/other")  # one endpoint behind four paths
    await server.client.get("/api/x")
    await server.client.get("/api/nothing")
    await server.client.request("DELETE", "/api/x")  # a path with a route, not for this method
    assert seen == [
        ("GET", "/api/status/{code}", 418),
        ("POST", "/api/status/{code}", 201),
        ("GET", "/api/v1/build", 200),
        ("GET", "/other", 200),
        ("GET", "/api/x", 200),
        ("GET", "unmatched", 404),
        ("DELETE", "unmatched", 405),
    ]
