"""The daemon as one service tree: parts start in order, serve, and stop in reverse, leaving nothing."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.error import CannotListenError
from twisted.web.client import HTTPConnectionPool

from asud.config import Config
from asud.service import makeService
from tests.catalog.helpers import demo_config
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]


def daemon_config(tree: DemoTree, data_dir: Path, **overrides: Any) -> Config:
    settings: dict[str, Any] = {"http": {"listen": ["tcp:0:interface=127.0.0.1"]}, "build": {"workers": 0}}
    return demo_config(tree, data_dir=str(data_dir), **{**settings, **overrides})


@pytest_twisted.ensureDeferred
async def test_daemon_starts_serves_and_stops_with_its_own_redis(demo_tree: DemoTree, tmp_path: Path) -> None:
    require_executable("redis-server")
    config = daemon_config(demo_tree, tmp_path / "data")
    service = makeService(config)
    service.startService()
    try:
        await service.started
        http = service.getServiceNamed("http")
        port = http.ports[0].getHost().port
        response = await treq.get(f"http://127.0.0.1:{port}/json/v1/overview.json", persistent=False)
        assert response.code == 200
        assert response.headers.getRawHeaders("server") == ["TwistedWeb/" + _twisted_version()]
        overview = json.loads(await response.content())
        assert "24.10" in overview["branches"]
        embedded = service.getServiceNamed("redis-server")
        socket_path = Path(embedded.url.removeprefix("unix://").split("?")[0])
        assert socket_path.exists()
    finally:
        await service.stopService()
    assert not socket_path.exists(), "the embedded redis-server is stopped with the daemon"
    assert (tmp_path / "data" / "redis").is_dir()


@pytest_twisted.ensureDeferred
async def test_embedded_daemon_opens_no_port_and_exposes_its_resource(demo_tree: DemoTree,
                                                                       tmp_path: Path) -> None:
    require_executable("redis-server")
    config = demo_config(demo_tree, data_dir=str(tmp_path / "data"), http={"listen": []},
                         build={"workers": 0})
    service = makeService(config)
    names = [getattr(child, "name", None) for child in service]
    assert "http" not in names
    assert service.resource is not None
    service.startService()
    try:
        await service.started
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_port_in_use_fails_the_start_and_stops_what_had_started(demo_tree: DemoTree,
                                                                        tmp_path: Path) -> None:
    require_executable("redis-server")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = daemon_config(demo_tree, tmp_path / "data",
                               http={"listen": [f"tcp:{port}:interface=127.0.0.1"]})
        service = makeService(config)
        service.startService()
        with pytest.raises(CannotListenError):
            await service.started
    embedded = service.getServiceNamed("redis-server")
    assert not embedded.running
    assert not Path(embedded.url.removeprefix("unix://")).exists()
    await service.stopService()  # a later stop (twistd's shutdown) is harmless


def _twisted_version() -> str:
    from twisted import __version__

    return __version__


@pytest_twisted.ensureDeferred
async def test_stopping_closes_kept_alive_connections(demo_tree: DemoTree, tmp_path: Path) -> None:
    """An idle keep-alive connection holds a server timer: a stopped daemon must leave neither behind."""
    require_executable("redis-server")
    service = makeService(daemon_config(demo_tree, tmp_path / "data"))
    service.startService()
    await service.started
    port = service.getServiceNamed("http").ports[0].getHost().port
    pool = HTTPConnectionPool(reactor, persistent=True)
    try:
        response = await treq.get(f"http://127.0.0.1:{port}/api/v1/stats", pool=pool)
        await response.content()
        assert service.getServiceNamed("http").site._open, "the connection is kept alive"
        await service.stopService()
        assert not service.getServiceNamed("http").site._open
    finally:
        await pool.closeCachedConnections()


def test_housekeeping_runs_as_often_as_configured_and_bounds_the_upstream_cache(demo_tree: DemoTree,
                                                                                tmp_path: Path) -> None:
    config = daemon_config(demo_tree, tmp_path / "data", cache={"housekeeping_interval": "2m"})
    housekeeping = makeService(config).getServiceNamed("housekeeping")
    assert housekeeping.interval == 120.0
    assert housekeeping.upstream is not None  # the catalog's fetcher: its disk cache is trimmed too
