"""Bring a database to the newest schema with the Alembic migrations shipped inside the package.

Alembic is configured in code (no ``alembic.ini`` needed at run time), so ``sysup`` works from any
directory and from an installed wheel. ``alembic -c sysup/database/alembic.ini …`` is not required;
``python -m sysup.database.migrate revision -m "…"`` writes a new migration during development.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from sysup.database.engine import _normalise_url

#: The directory holding ``env.py`` and ``versions/``.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ``%`` is ConfigParser interpolation syntax; URLs may contain it (escaped passwords).
    config.set_main_option("sqlalchemy.url", _normalise_url(url).replace("%", "%%"))
    return config


#: ``pg_advisory_lock`` key held while migrating, so API processes started together migrate one at a time.
MIGRATION_LOCK_KEY = 0x5359_5355_5000


def upgrade_database(url: str) -> None:
    """Run ``alembic upgrade head`` on ``url``; a no-op when the schema is current.

    On PostgreSQL an advisory lock serialises concurrent callers (several ``sysup serve`` starting at once
    on different machines): the first migrates, the others then find the schema current.
    """
    if not _normalise_url(url).startswith("postgresql"):
        command.upgrade(alembic_config(url), "head")
        return
    from sqlalchemy import text

    from sysup.database.engine import create_engine_for

    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                command.upgrade(alembic_config(url), "head")
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    from sysup.database.engine import create_engine_for

    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def _main(argv: list[str]) -> None:
    """Development entry: ``python -m sysup.database.migrate revision -m MSG [--autogenerate] URL``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sysup.database.migrate")
    sub = parser.add_subparsers(dest="command", required=True)
    upgrade = sub.add_parser("upgrade")
    upgrade.add_argument("url")
    revision = sub.add_parser("revision")
    revision.add_argument("url")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "upgrade":
        upgrade_database(args.url)
    else:
        command.revision(alembic_config(args.url), message=args.message, autogenerate=args.autogenerate)


if __name__ == "__main__":
    _main(sys.argv[1:])
