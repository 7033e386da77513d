"""Fixtures of the catalog tests: databases, the demo upstream, and a catalog synced from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sysup.catalog.queries import Catalog
from tests.catalog.sysup_era.helpers import distro_for, migrated, run_sync
from tests.support.databases import database_url, postgres_url, sqlite_url
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["database_url", "demo_tree", "demo_upstream_url", "postgres_url", "sqlite_url"]


@pytest.fixture(scope="module")
def synced(demo_tree: DemoTree, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """A catalog synced once from the demo upstream over HTTP (read-only for the tests using it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('catalog') / 'sysup.db'}"
    factory = migrated(url)
    distro = distro_for(demo_tree)
    report = run_sync(factory, distro)
    assert report.errors == []
    yield Catalog(factory, {"openwrt": distro})
    factory.kw["bind"].dispose()
