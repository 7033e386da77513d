"""A stopping daemon (SIGTERM): build requests get 503 + ``Retry-After``, running builds go back to the
queue while the API still answers, and the listeners close last, after the answers in flight are out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.client import HTTPConnectionPool

from asud.service import AsudService, makeService
from tests.catalog.helpers import demo_config
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

BUILD = {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
         "packages": ["luci"]}
LEGACY = {"distro": "openwrt", "version": "24.10.4", "target": "ath79/generic",
          "board": "tplink_archer-c7-v5", "packages": ["luci"]}


def _service(tree: DemoTree, data_dir: Path, workers: int) -> AsudService:
    build: dict[str, Any] = {"workers": workers}
    if workers == 0:
        build["sandbox"] = "none"
    config = demo_config(tree, data_dir=str(data_dir), http={"listen": ["tcp:0:interface=127.0.0.1"]},
                         build=build)
    return makeService(config)


def _base(service: AsudService) -> str:
    return f"http://127.0.0.1:{service.getServiceNamed('http').ports[0].getHost().port}"


async def _post(url: str, body: Any, pool: HTTPConnectionPool | None = None) -> tuple[int, Any, Any]:
    response = await treq.post(url, json=body, pool=pool, persistent=pool is not None)
    content = await response.content()
    return response.code, response.headers, json.loads(content) if content else None


@pytest_twisted.ensureDeferred
async def test_a_stopping_daemon_answers_build_requests_503_with_retry_after(demo_tree: DemoTree,
                                                                            tmp_path: Path) -> None:
    require_executable("redis-server")
    service = _service(demo_tree, tmp_path / "data", workers=0)
    service.startService()
    try:
        await service.started
        base = _base(service)
        code, _, body = await _post(f"{base}/api/v1/build", BUILD)
        assert code == 202, body
        service.app.refuse_builds()  # what the start of stopService does
        code, headers, body = await _post(f"{base}/api/v1/build", BUILD)
        assert code == 503, body
        assert headers.getRawHeaders("retry-after") == ["5"]
        assert headers.getRawHeaders("access-control-allow-origin") == ["*"]
        assert body["status"] == 503 and body["detail"] == "The server is stopping, retry in a few seconds"
        code, _, _ = await _post(f"{base}//api/v1/build", BUILD)
        assert code == 503
        for path in ("/api/upgrade-request", "/api/build-request"):
            code, headers, body = await _post(f"{base}{path}", LEGACY)
            assert code == 503, (path, body)
            assert headers.getRawHeaders("retry-after") == ["5"]
            assert body["error"] == "The server is stopping, retry in a few seconds"
        # Everything else is answered as usual until the listeners close.
        response = await treq.get(f"{base}/json/v1/overview.json", persistent=False)
        assert response.code == 200
        await response.content()
    finally:
        await service.stopService()


async def _wait_for(check: Any, timeout: float = 60.0) -> None:
    waited = 0.0
    while not check():
        assert waited < timeout, "timed out"
        await deferLater(reactor, 0.05, lambda: None)
        waited += 0.05


@pytest_twisted.ensureDeferred
async def test_stop_hands_builds_back_while_the_api_answers_then_closes(demo_tree: DemoTree,
                                                                       tmp_path: Path) -> None:
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    service = _service(demo_tree, tmp_path / "data", workers=1)
    service.startService()
    pool = HTTPConnectionPool(reactor, persistent=True)
    stopped: Deferred[None] | None = None
    try:
        await service.started
        base = _base(service)
        code, _, body = await _post(f"{base}/api/v1/build", BUILD, pool)
        assert code == 202, body
        request_hash = body["request_hash"]
        build_pool = service.getServiceNamed("build-pool")
        await _wait_for(lambda: bool(build_pool.builds))
        http = service.getServiceNamed("http")

        stopped = service.stopService()
        assert http.ports, "the listeners stay open while the pool hands its builds back"
        assert build_pool.builds, "the build is still being cancelled"
        code, headers, body = await _post(f"{base}/api/v1/build", BUILD, pool)  # a kept-alive connection
        assert code == 503, body
        assert headers.getRawHeaders("retry-after") == ["5"]
        await stopped
        stopped = None
        assert not http.ports and not http.site._open
    finally:
        if stopped is not None:
            await stopped
        await pool.closeCachedConnections()

    again = _service(demo_tree, tmp_path / "data", workers=0)
    again.startService()
    try:
        await again.started
        response = await treq.get(f"{_base(again)}/api/v1/build/{request_hash}", persistent=False)
        body = json.loads(await response.content())
        assert response.code == 202 and body["detail"] == "queued", body
    finally:
        await again.stopService()
