"""The demo upstream's catalog, shared (read-only) by the upgrade tests: ``demo_catalog`` (asud) and, while
sysup lives, ``catalog`` (sysup, synced into SQLite) for the ``*_sysup.py`` tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy.orm import Session, sessionmaker

from sysup.catalog.queries import Catalog
from sysup.config import DistroSettings
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url
from tests.upgrades.helpers import synced_sessions

__all__ = ["catalog", "demo_catalog", "demo_tree", "demo_upstream_url", "synced_database"]


@pytest.fixture(scope="session")
def synced_database(
    tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree
) -> Iterator[tuple[sessionmaker[Session], DistroSettings]]:
    path = tmp_path_factory.mktemp("upgrades") / "sysup.db"
    sessions, distro = synced_sessions(f"sqlite:///{path}", demo_tree)
    yield sessions, distro
    sessions.kw["bind"].dispose()


@pytest.fixture(scope="session")
def catalog(synced_database: tuple[sessionmaker[Session], DistroSettings]) -> Catalog:
    sessions, distro = synced_database
    return Catalog(sessions, {"openwrt": distro})


@pytest_twisted.async_fixture(scope="module")
async def demo_catalog(demo_tree: DemoTree) -> Any:
    """The asud catalog of the demo upstream (one per test module: async fixtures stop at module scope)."""
    from tests.catalog.helpers import load_demo_catalog

    return await load_demo_catalog(demo_tree)
