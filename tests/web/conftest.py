"""Fixtures of the web tests: asud apps over the demo catalog and a private ``redis-server``, served
through StubTreq or on a real socket, and a headless Chromium on a thread of its own.

* ``asud_app`` / ``client`` / ``server``: the HTTP tests' app without a build pool (``tests.http.conftest``).
* ``web_app`` / ``web_server``: the same app as the browser tests want it: first-boot scripts allowed (up to
  2048 bytes), on 127.0.0.1.
* ``browser``: Debian's Chromium driven by Playwright (skipped on a laptop without it, fails under CI).
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted

from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.http.client import LiveServer, listening
from tests.http.conftest import asud_app, client, close_app, demo_settings, open_app, server
from tests.support.redis import RedisProcess
from tests.support.requirements import require
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url
from tests.web.browser import CHROMIUM, BrowserThread

__all__ = ["asud_app", "client", "demo_tree", "demo_upstream_url", "server"]

#: Where screenshots go (git-ignored): ``test-artifacts/web/``.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
#: The first-boot script limit of the browser tests' server (the pages show it).
DEFAULTS_LIMIT = 2048


@pytest.fixture(scope="session")
def browser() -> Iterator[BrowserThread]:
    require(CHROMIUM.exists(), f"Chromium not installed at {CHROMIUM} (Debian package chromium)")
    require(importlib.util.find_spec("playwright") is not None, "the playwright Python package is missing")
    thread = BrowserThread()
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest_twisted.async_yield_fixture
async def web_app(tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree) -> AsyncIterator[AsudApp]:
    config = demo_settings(tmp_path / "data", demo_tree,
                           requests={"allow_defaults": True, "max_defaults_length": DEFAULTS_LIMIT})
    app = await open_app(config, redis_server.url, demo_tree)
    try:
        yield app
    finally:
        await close_app(app)


@pytest_twisted.async_yield_fixture
async def web_server(web_app: AsudApp) -> AsyncIterator[LiveServer]:
    async with listening(make_resource(web_app), max_body_bytes=web_app.config.http.max_body_bytes) as live:
        yield live
