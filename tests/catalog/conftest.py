"""Fixtures of the catalog tests: the demo upstream, a catalog loaded from it, a private tree copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_twisted

from asud.catalog import Catalog
from tests.catalog.helpers import TreeServer, copy_tree, load_demo_catalog
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]


@pytest_twisted.async_fixture(scope="module")
async def catalog(demo_tree: DemoTree) -> Catalog:
    """The demo catalog, loaded once per module over HTTP (read-only for the tests using it)."""
    return await load_demo_catalog(demo_tree)


@pytest_twisted.async_yield_fixture()
async def private_tree(demo_tree: DemoTree, tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A private copy of the demo tree (to tamper with), served from the test reactor: ``(root, url)``."""
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    server = TreeServer(root)
    yield root, server.start()
    await server.stop()
