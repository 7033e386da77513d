"""Database fixtures (SQLite file, throwaway PostgreSQL database) and the demo upstream for these tests."""

from tests.support.databases import database_url, postgres_url, sqlite_url
from tests.support.upstream import demo_tree, demo_upstream_url

__all__ = ["database_url", "demo_tree", "demo_upstream_url", "postgres_url", "sqlite_url"]
