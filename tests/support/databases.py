"""Database URLs for tests: a fresh SQLite file, and a throwaway PostgreSQL database per test session.

PostgreSQL is found at ``SYSUP_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
trust auth). Without it the PostgreSQL tests skip on a laptop and fail under ``CI=true``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.requirements import require

#: The maintenance database used to create and drop the throwaway ones.
POSTGRES_ADMIN_URL = os.environ.get("SYSUP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


def _connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database created for this test session (``sysup_test_<random>``) and dropped after it."""
    try:
        admin = _connect(POSTGRES_ADMIN_URL)
    except Exception as error:  # any connection failure means "not available here"
        require(False, f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}")
        raise
    name = f"sysup_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(POSTGRES_ADMIN_URL, name)
    finally:
        with _connect(POSTGRES_ADMIN_URL) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of its own for one test."""
    return f"sqlite:///{tmp_path / 'sysup.db'}"


def reset_postgres(url: str) -> None:
    """Empty a test database completely (schema and Alembic state), so a test can migrate from zero."""
    with _connect(url) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend in turn (the PostgreSQL one is reset for every test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sysup.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url
