"""The 2017 API's common rules (``shared/reference/legacy-api.md``) and the cross-route rules of
clients-contract §6.7 that apply to it, on a real socket (CORS and redirects are about the wire)."""

from __future__ import annotations

import time

import pytest
import pytest_twisted

from tests.http.client import LiveServer, StubClient, raw_request
from tests.http.legacy_bodies import assert_legacy_error, ath79_body
from tests.support.redis import RedisProcess

ORIGIN = {"Origin": "http://192.168.1.1"}
PREFLIGHT = {
    **ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
}


@pytest.mark.parametrize(
    "path",
    [
        "/api/upgrade-request",
        f"/api/build-request/{'a' * 12}",
        "/api/upgrade-check",
        f"/api/image/{'a' * 64}",
        "/api/distros",
        "/api/packages_image",
    ],
)
@pytest_twisted.ensureDeferred
async def test_preflight_and_cors_on_the_2017_paths(server: LiveServer, path: str) -> None:
    preflight = await server.client.options(path, headers=PREFLIGHT)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert {"GET", "POST", "OPTIONS"} <= set(preflight.headers["access-control-allow-methods"].split(", "))
    answer = await server.client.get(path, headers=ORIGIN)  # answers and errors alike
    assert answer.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_answers_are_json_with_a_length_and_cors(server: LiveServer) -> None:
    posted = await server.client.post("/api/upgrade-request", json=await ath79_body(server.client, "luci"),
                                      headers=ORIGIN)
    assert posted.status_code == 202, posted.text
    assert posted.headers["content-type"] == "application/json"
    assert int(posted.headers["content-length"]) == len(posted.content)
    assert posted.headers["access-control-allow-origin"] == "*"
    error = await server.client.post("/api/upgrade-request", json={"version": "24.10.4"}, headers=ORIGIN)
    assert_legacy_error(error, 400)
    assert error.headers["x-missing-param"] == "target"
    assert error.headers["access-control-allow-origin"] == "*"


@pytest_twisted.ensureDeferred
async def test_timestamp_query_is_tolerated(server: LiveServer) -> None:
    posted = await server.client.post("/api/build-request?1700000000", json=await ath79_body(server.client))
    assert posted.status_code == 202, posted.text
    request_hash = posted.json()["request_hash"]
    for path in (f"/api/build-request/{request_hash[:12]}", "/api/distros", "/api/versions"):
        assert (await server.client.get(f"{path}?1700000000")).status_code in (200, 202), path


@pytest_twisted.ensureDeferred
async def test_a_server_url_ending_in_a_slash_is_redirected(server: LiveServer) -> None:
    status, _, head = await raw_request(server, "GET", "//api/distros?1700000000")
    assert status == 301
    assert "\r\nlocation: /api/distros?1700000000" in head


@pytest_twisted.ensureDeferred
async def test_2019_request_forms_are_accepted(client: StubClient) -> None:
    """``target: "ath79/generic"`` without ``subtarget``, ``LEDE`` as the distribution's name, and
    ``client`` left out (the User-Agent counts)."""
    body = await ath79_body(client, "curl", distro="LEDE", target="ath79/generic")
    del body["subtarget"], body["client"]
    response = await client.post("/api/upgrade-request", json=body, headers={"User-Agent": "luci/2019"})
    assert response.status_code == 202, response.text


@pytest_twisted.ensureDeferred
async def test_wrong_method_and_unknown_path_keep_the_v1_shape(client: StubClient) -> None:
    wrong = await client.get("/api/upgrade-request")
    assert wrong.status_code == 405 and wrong.json()["status"] == 405
    unknown = await client.get("/api/no-such-route")
    assert unknown.status_code == 404 and unknown.json()["status"] == 404
    not_json = await client.post("/api/upgrade-request", content=b"\xff\xfe not json")
    assert assert_legacy_error(not_json, 400)["error"] == "The request body is not valid JSON"
    listing = await client.post("/api/upgrade-request", json=["not", "an", "object"])
    assert assert_legacy_error(listing, 400)["error"] == "The request body must be a JSON object"


@pytest_twisted.ensureDeferred
async def test_redis_down_is_a_quick_503_with_retry_after(client: StubClient,
                                                          redis_server: RedisProcess) -> None:
    body = await ath79_body(client, "curl")
    redis_server.stop()
    started = time.monotonic()
    for path in ("/api/upgrade-request", "/api/build-request"):
        response = await client.post(path, json=body)
        assert_legacy_error(response, 503)
        assert int(response.headers["retry-after"]) > 0
    polled = await client.get(f"/api/upgrade-request/{'a' * 12}")
    assert_legacy_error(polled, 503)
    assert time.monotonic() - started < 5.0
