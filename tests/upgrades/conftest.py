"""A catalog synced once from the demo upstream, shared (read-only) by the upgrade tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sysup.catalog.queries import Catalog
from sysup.config import DistroSettings
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url
from tests.upgrades.helpers import synced_sessions

__all__ = ["catalog", "demo_tree", "demo_upstream_url", "synced_database"]


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
