"""A finished build's status is answered by the fast path exactly as the route answers it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import build_body
from tests.api.test_post_cache_hit import _finish

#: Headers whose values both paths must agree on (Date/Server are uvicorn's own).
COMPARED = (
    "content-type",
    "content-length",
    "x-imagebuilder-status",
    "x-queue-position",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-expose-headers",
)


def test_fast_path_answers_like_the_route(api_url: str, api_state: Any) -> None:
    body = build_body(packages=["luci", "tcpdump"], client="fast-path/1")
    request_hash = httpx.post(f"{api_url}/api/v1/build", json=body).json()["request_hash"]
    _finish(api_state, request_hash)
    url = f"{api_url}/api/v1/build/{request_hash}"
    api_state.finished.discard(request_hash)
    routed = httpx.get(url)  # a miss: the route renders it and keeps it in memory
    assert routed.status_code == 200 and api_state.finished.get(request_hash) is not None

    fast = httpx.get(f"{url}?1700000000")  # LuCI's timestamp query; served from memory
    assert fast.status_code == 200 and fast.content == routed.content
    assert fast.json()["status"] == 200 and fast.json()["request_hash"] == request_hash
    for name in COMPARED:
        assert fast.headers.get(name) == routed.headers.get(name), name

    head = httpx.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["x-imagebuilder-status"] == "done"
    assert head.headers["content-length"] == str(len(routed.content))

    metrics = httpx.get(f"{api_url}/metrics").text
    assert 'route="/api/v1/build/{request_hash}"' in metrics


def test_unknown_and_unfinished_builds_still_reach_the_route(api_url: str) -> None:
    missing = httpx.get(f"{api_url}/api/v1/build/{'0' * 64}")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    queued = httpx.post(f"{api_url}/api/v1/build", json=build_body(packages=["htop"], client="fast-path/2"))
    again = httpx.get(f"{api_url}/api/v1/build/{queued.json()['request_hash']}")
    assert again.status_code == 202 and again.json()["detail"] == "queued"
