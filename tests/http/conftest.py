"""Fixtures for every HTTP test (any surface's): an ``AsudApp``, a StubTreq client, a real-socket server.

* ``bare_app`` / ``bare_client`` / ``bare_server``: an app with the files store only (no Redis, no catalog):
  CORS, slashes, errors, docs, downloads.
* ``asud_app`` / ``client`` / ``server``: an app over a private ``redis-server`` and the demo catalog, with
  build records and the queue but no build pool, so every accepted build stays queued.

``client`` answers through ``treq.testing.StubTreq`` (no socket); ``server.client`` through treq on a real
socket (``tests.http.client``). Use the socket where the wire matters: CORS, redirects, streaming.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor

from asud.build.queue import BuildQueue
from asud.catalog import Catalog
from asud.config import Config, load
from asud.http.root import make_resource
from asud.http.state import AsudApp
from asud.store.files import Store
from asud.store.rate_limit import create_rate_limiter
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from asud.store.stats import StatsRecorder
from asud.store.stats_queries import StatsQueries
from asud.upgrades.store import UpgradeCheckStore
from tests.catalog.helpers import load_demo_catalog
from tests.http.client import LiveServer, StubClient, listening
from tests.support.redis import RedisProcess
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]


def make_config(data_dir: Path, **overrides: Any) -> Config:
    """Settings with everything under ``data_dir`` and nothing read from the environment or /etc."""
    return load(None, environ={}, data_dir=str(data_dir), **overrides)


@pytest.fixture
def bare_app(tmp_path: Path) -> AsudApp:
    config = make_config(tmp_path / "data")
    return AsudApp(config=config, files=Store(config.store_dir))


@pytest.fixture
def bare_client(bare_app: AsudApp) -> StubClient:
    return StubClient(make_resource(bare_app))


@pytest_twisted.async_yield_fixture
async def bare_server(bare_app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(make_resource(bare_app), max_body_bytes=bare_app.config.http.max_body_bytes) as live:
        yield live


@attrs.define
class LoadedCatalog:
    """Stands in for ``CatalogService`` (what ``AsudApp.catalog`` holds): the catalog, already loaded."""

    catalog: Catalog | None


_catalog: list[Catalog] = []


async def demo_catalog(tree: DemoTree) -> Catalog:
    """The demo catalog, loaded once per test process (a ``Catalog`` never changes)."""
    if not _catalog:
        _catalog.append(await load_demo_catalog(tree))
    return _catalog[0]


def demo_settings(data_dir: Path, tree: DemoTree, **overrides: Any) -> Config:
    """Settings over the demo upstream, generous queue limits, no sandbox (no pool runs here anyway)."""
    info, url = tree
    values: dict[str, Any] = {
        "distros": {"openwrt": {"upstream_url": url, "public_keys": [info.public_key_text]}},
        "requests": {"max_pending_jobs": 1000, "max_pending_per_client": 1000},
        "build": {"sandbox": "none"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return make_config(data_dir, **values)


async def open_app(config: Config, redis_url: str, tree: DemoTree) -> AsudApp:
    """An ``AsudApp`` over a Redis at ``redis_url`` and the demo catalog (no build pool)."""
    redis = Redis.from_url(redis_url, timeout=config.redis.timeout)
    return AsudApp(
        config=config,
        files=Store(config.store_dir),
        clock=reactor,  # type: ignore[arg-type]
        catalog=LoadedCatalog(await demo_catalog(tree)),
        records=BuildRecords.from_config(redis, config, clock=reactor),  # type: ignore[arg-type]
        queue=BuildQueue(redis, lease_timeout=config.build.lease_timeout),
        redis=redis,
        stats=StatsRecorder(redis, retention=config.retention.stats, clock=reactor),  # type: ignore[arg-type]
        stats_queries=StatsQueries(redis, retention=config.retention.stats,
                                   clock=reactor),  # type: ignore[arg-type]
        upgrade_checks=UpgradeCheckStore(redis, clock=reactor),  # type: ignore[arg-type]
        rate_limits=create_rate_limiter(config.requests.rate_limit_per_minute, redis,
                                        clock=reactor),  # type: ignore[arg-type]
    )


NODE = "http-tests"


async def finish_build(app: AsudApp, request_hash: str, result: dict[str, Any] | None = None) -> None:
    """Mark the build behind ``request_hash`` done, as the pool would (the test app has none)."""
    assert app.records is not None
    view = await app.records.get(request_hash)
    assert view is not None
    await app.records.started(view.image_key, NODE)
    result = result if result is not None else {"images": [], "manifest": {"base-files": "1"}}
    await app.records.done(view.image_key, result, request_hash, "", "", node=NODE)


async def set_status(app: AsudApp, request_hash: str, status: str) -> None:
    """Change the build record's status behind the API's back (to tell memory answers from Redis ones)."""
    from asud.store.records import build_key

    assert app.records is not None and app.redis is not None
    view = await app.records.get(request_hash)
    assert view is not None
    await app.redis.call("HSET", build_key(view.image_key), "status", status)


async def close_app(app: AsudApp) -> None:
    if app.stats is not None:
        await app.stats.flush()
    if app.redis is not None:
        await app.redis.disconnect()


@pytest_twisted.async_yield_fixture
async def asud_app(tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree) -> AsyncIterator[AsudApp]:
    app = await open_app(demo_settings(tmp_path / "data", demo_tree), redis_server.url, demo_tree)
    try:
        yield app
    finally:
        await close_app(app)


@pytest.fixture
def client(asud_app: AsudApp) -> StubClient:
    return StubClient(make_resource(asud_app))


@pytest_twisted.async_yield_fixture
async def server(asud_app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(make_resource(asud_app), max_body_bytes=asud_app.config.http.max_body_bytes) as live:
        yield live
