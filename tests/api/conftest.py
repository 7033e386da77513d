"""Live API servers on 127.0.0.1 over a catalog synced from the demo upstream.

* ``api_url``: an app without a build worker, so every accepted build stays queued (queue answers are stable).
* ``api_state``: the same app's resources.
* ``bare_url``/``bare_state``: a server over an empty catalog (errors, store, CORS need no upstream).
The end-to-end builds use their own server with the embedded worker (``test_end_to_end.py``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysup.config import DistroSettings, Settings
from tests.api.live_server import live_server
from tests.support.requirements import require

_NEEDED = {
    "tests.support.upstream": "the demo upstream test helpers",
    "sysup.catalog.sync": "the catalog sync",
    "sysup.catalog.queries": "the catalog read API",
    "sysup.builds.service": "the build service",
    "sysup.builds.queue": "the build queue",
    "sysup.build_requests.validate": "request validation",
    "asud.store.files": "the store",
}


def _missing() -> list[str]:
    missing = []
    for module, what in _NEEDED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(f"{what} ({module})")
    return missing


if not _missing():
    from tests.support.upstream import demo_tree, demo_upstream_url
else:

    @pytest.fixture(scope="session")
    def demo_tree() -> Any:
        require(False, "not written yet: " + ", ".join(_missing()))

    @pytest.fixture(scope="session")
    def demo_upstream_url() -> Any:
        require(False, "not written yet: " + ", ".join(_missing()))


def make_settings(data_dir: Path, tree: Any, upstream_url: str, **overrides: Any) -> Settings:
    """Settings for a server over the demo upstream, with everything under ``data_dir``."""
    distro = DistroSettings(upstream_url=upstream_url, public_keys=[tree.public_key_text])
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'sysup.db'}",
        "distros": {"openwrt": distro},
        "max_pending_jobs": 1000,
        "max_pending_per_client": 1000,
        "sandbox": "none",
    }
    values.update(overrides)
    return Settings(**values)


def migrate(settings: Settings) -> None:
    """Create the schema, as ``sysup serve`` does before it starts."""
    from sysup.database.migrate import upgrade_database

    upgrade_database(settings.resolved_database_url)


def migrate_and_sync(settings: Settings) -> None:
    """Create the schema and fill the catalog from the demo upstream (``sysup serve`` + ``sysup sync``)."""
    from sysup.catalog.sync import sync_distro
    from sysup.database import create_engine_for, session_factory
    from sysup.upstream.fetch import Fetcher

    migrate(settings)
    engine = create_engine_for(settings.resolved_database_url)
    try:
        with Fetcher(timeout=settings.fetch_timeout, retries=settings.fetch_retries) as fetcher:
            for name, distro in settings.distros.items():
                sync_distro(session_factory(engine), name, distro, fetcher)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def demo_info(demo_tree: Any) -> Any:
    """The ``TreeInfo`` of the demo tree (``demo_tree`` yields ``(TreeInfo, base_url)``)."""
    return demo_tree[0]


@pytest.fixture(scope="session")
def queued_settings(
    tmp_path_factory: pytest.TempPathFactory, demo_info: Any, demo_upstream_url: str
) -> Settings:
    settings = make_settings(tmp_path_factory.mktemp("api-queued"), demo_info, demo_upstream_url)
    migrate_and_sync(settings)
    return settings


@pytest.fixture(scope="session")
def queued_app(queued_settings: Settings) -> Iterator[tuple[str, Any]]:
    from sysup.api.app import create_app

    app = create_app(queued_settings)
    with live_server(app) as url:
        yield url, app.state.api


@pytest.fixture(scope="session")
def api_url(queued_app: tuple[str, Any]) -> str:
    return queued_app[0]


@pytest.fixture(scope="session")
def api_state(queued_app: tuple[str, Any]) -> Any:
    return queued_app[1]


@pytest.fixture(scope="session")
def bare_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    from sysup.api.app import create_app

    data_dir = tmp_path_factory.mktemp("api-bare")
    settings = Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'sysup.db'}")
    migrate(settings)
    app = create_app(settings)
    with live_server(app) as url:
        yield url, app.state.api


@pytest.fixture(scope="session")
def bare_url(bare_app: tuple[str, Any]) -> str:
    return bare_app[0]


@pytest.fixture(scope="session")
def bare_state(bare_app: tuple[str, Any]) -> Any:
    return bare_app[1]
