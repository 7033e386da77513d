"""The packaged migrations create the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import sysup.builds.models
import sysup.catalog.models
import sysup.stats.models
import sysup.upgrades.models  # noqa: F401  (each import registers its tables on Base.metadata)
from sysup.database import Base, create_engine_for
from sysup.database.migrate import current_revision, upgrade_database

CATALOG_TABLES = {
    "branches",
    "versions",
    "targets",
    "profiles",
    "supported_devices",
    "package_feeds",
    "upstream_files",
}


def test_upgrade_creates_catalog_tables_and_is_idempotent(database_url: str) -> None:
    assert current_revision(database_url) is None
    upgrade_database(database_url)
    head = current_revision(database_url)
    assert head is not None
    upgrade_database(database_url)
    assert current_revision(database_url) == head
    engine = create_engine_for(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert tables >= CATALOG_TABLES
        indexed = {
            column for index in inspect(engine).get_indexes("targets") for column in index["column_names"]
        }
        assert {"distro", "version", "target", "arch_packages"} <= indexed
    finally:
        engine.dispose()


def test_every_model_matches_the_migrations(database_url: str) -> None:
    """A model changed without a migration (or the reverse) shows up here, on both backends."""
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
        assert set(inspect(engine).get_table_names()) >= {
            *CATALOG_TABLES, "builds", "build_requests", "upgrade_checks", "stats_requests", "stats_daily"
        }
    finally:
        engine.dispose()
