"""Fixtures: the demo upstream and the shared building server (see ``building_server.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client.building_server import building_server_url
from tests.support.upstream import demo_tree, demo_upstream_url

__all__ = ["building_url", "demo_tree", "demo_upstream_url"]


@pytest.fixture(scope="session")
def building_url(tmp_path_factory: pytest.TempPathFactory, demo_tree: Any, demo_upstream_url: str) -> str:
    return building_server_url(tmp_path_factory.mktemp("client-server"), demo_tree[0], demo_upstream_url)
