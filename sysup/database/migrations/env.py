"""Alembic environment: runs the packaged migrations against the URL ``sysup.database.migrate`` sets."""

from __future__ import annotations

import importlib

from alembic import context

from sysup.database import Base, create_engine_for

#: Modules declaring tables; imported so ``--autogenerate`` sees every table. Missing ones are skipped
#: while stages are being developed.
MODEL_MODULES = [
    "sysup.catalog.models",
    "sysup.builds.models",
    "sysup.build_requests.models",
    "sysup.api.models",
    "sysup.upgrades.models",
    "sysup.stats.models",
]

for _module in MODEL_MODULES:
    try:
        importlib.import_module(_module)
    except ModuleNotFoundError as error:
        if error.name != _module:
            raise

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                # SQLite cannot ALTER most things; batch mode recreates tables instead.
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
