"""The demo upstream's catalog, shared (read-only) by the upgrade tests: ``demo_catalog``."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["demo_catalog", "demo_tree", "demo_upstream_url"]


@pytest_twisted.async_fixture(scope="module")
async def demo_catalog(demo_tree: DemoTree) -> Any:
    """The asud catalog of the demo upstream (one per test module: async fixtures stop at module scope)."""
    from tests.catalog.helpers import load_demo_catalog

    return await load_demo_catalog(demo_tree)
