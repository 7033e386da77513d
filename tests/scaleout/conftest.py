"""Scale-out fixtures: a PostgreSQL database with the demo catalog, and a cluster of real processes.

``catalog_db`` (per module) is a database of its own on the PostgreSQL at ``SYSUP_TEST_POSTGRES``, migrated
and synced from the demo upstream once. ``cluster`` (per test) empties the build tables, starts a private
``redis-server`` and writes a ``sysup.toml`` (PostgreSQL + RedisHuey + a shared data directory, short
leases); the test starts ``sysup serve --no-worker`` and ``sysup worker`` processes from it, and every
process is stopped afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import make_settings, migrate_and_sync
from tests.scaleout import cluster as procs
from tests.support.databases import POSTGRES_ADMIN_URL, _connect, _with_database
from tests.support.requirements import require, require_executable
from tests.support.upstream import demo_tree, demo_upstream_url

__all__ = ["catalog_db", "cluster", "demo_tree", "demo_upstream_url"]

#: Short leases so a dead worker's build is taken over within seconds.
LEASE_TIMEOUT = 3
LEASE_RENEW = 1


@pytest.fixture(scope="module")
def catalog_db(
    tmp_path_factory: pytest.TempPathFactory, demo_tree: Any, demo_upstream_url: str
) -> Iterator[str]:
    """A fresh PostgreSQL database with the schema and the demo catalog."""
    require_executable("redis-server")
    try:
        admin = _connect(POSTGRES_ADMIN_URL)
    except Exception as error:
        require(False, f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}")
        raise
    name = f"sysup_scaleout_{secrets.token_hex(5)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(POSTGRES_ADMIN_URL, name)
    try:
        settings = make_settings(tmp_path_factory.mktemp("scaleout-sync"), demo_tree[0], demo_upstream_url,
                                 database_url=url)
        migrate_and_sync(settings)
        yield url
    finally:
        with _connect(POSTGRES_ADMIN_URL) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Cluster:
    """What one test runs: our Redis, the config every process reads, and the processes started."""

    root: Path
    database_url: str
    redis: procs.RedisServer
    distro: dict[str, Any]
    processes: list[procs.SysupProcess] = field(default_factory=list)
    proxy: procs.PausableProxy | None = None

    def configure(self, **overrides: Any) -> Path:
        values: dict[str, Any] = {
            "data_dir": str(self.root / "data"),
            "database_url": self.database_url,
            "queue_url": self.redis.url,
            "sandbox": "none",
            "lease_timeout": LEASE_TIMEOUT,
            "lease_renew_interval": LEASE_RENEW,
            "max_pending_jobs": 1000,
            "max_pending_per_client": 1000,
        }
        values.update(overrides)
        return procs.write_config(self.root / "sysup.toml", values, self.distro)

    def api(self, name: str = "api") -> procs.SysupProcess:
        process = procs.api(self.root / "sysup.toml", name)
        self.processes.append(process)
        return process.start()

    def worker(self, name: str = "worker", threads: int = 1) -> procs.SysupProcess:
        process = procs.worker(self.root / "sysup.toml", name, threads)
        self.processes.append(process)
        return process.start()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()}" for p in self.processes)

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        with _connect(self.database_url) as connection:
            cursor = connection.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []


@pytest.fixture
def cluster(tmp_path: Path, catalog_db: str, demo_tree: Any, demo_upstream_url: str) -> Iterator[Cluster]:
    with _connect(catalog_db) as connection:
        connection.execute("TRUNCATE build_requests, builds RESTART IDENTITY CASCADE")
    redis = procs.RedisServer(tmp_path / "redis")
    redis.start()
    distro = {"upstream_url": demo_upstream_url, "public_keys": [demo_tree[0].public_key_text]}
    made = Cluster(tmp_path, catalog_db, redis, distro)
    made.configure()
    try:
        yield made
    finally:
        for process in made.processes:
            process.kill()
        if made.proxy is not None:
            made.proxy.close()
        redis.stop()
