"""The packaged migrations create the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import sysup.catalog.models  # noqa: F401  (registers the catalog tables on Base.metadata)
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


def test_catalog_models_match_the_migrations(database_url: str) -> None:
    upgrade_database(database_url)
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        catalog_diff = [entry for entry in diff if _table_of(entry) in CATALOG_TABLES]
        assert catalog_diff == []
    finally:
        engine.dispose()


def _table_of(entry: object) -> str | None:
    """The table a diff entry is about (entries are tuples or lists of tuples)."""
    if isinstance(entry, list):
        entry = entry[0]
    assert isinstance(entry, tuple)
    for item in entry[1:]:
        table = getattr(item, "table", None)
        if table is not None:
            return str(table.name)
        if isinstance(item, str) and item in CATALOG_TABLES:
            return item
        name = getattr(item, "name", None)
        if isinstance(name, str) and name in CATALOG_TABLES:
            return name
    return None
