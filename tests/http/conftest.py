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

import pytest
import pytest_twisted

from asud.config import Config, load
from asud.http.root import make_resource
from asud.http.state import AsudApp
from asud.store.files import Store
from tests.http.client import LiveServer, StubClient, listening


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
