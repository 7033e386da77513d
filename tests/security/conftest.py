"""Live servers for the attack tests, over a catalog synced from the demo upstream (no build worker).

* ``target_url``: a server with an allow-list of extra repositories (``https://repo.example.org/openwrt``),
  ``defaults`` allowed and no rate limit; every accepted build stays queued.
* ``limited_server``: the same catalog with ``rate_limit_per_minute=3`` and ``max_pending_per_client=2``.
Requests can claim another client address with ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1, as it
would from a reverse proxy on the same host).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sysup.config import Settings
from tests.api.conftest import make_settings, migrate_and_sync
from tests.api.live_server import live_server
from tests.support.upstream import demo_tree, demo_upstream_url

__all__ = ["demo_tree", "demo_upstream_url"]

ALLOWED_REPOSITORY = "https://repo.example.org/openwrt"


@pytest.fixture(scope="session")
def security_settings(
    tmp_path_factory: pytest.TempPathFactory, demo_tree: Any, demo_upstream_url: str
) -> Settings:
    settings = make_settings(
        tmp_path_factory.mktemp("security"), demo_tree[0], demo_upstream_url,
        repository_allow_list=[ALLOWED_REPOSITORY], allow_defaults=True,
    )
    migrate_and_sync(settings)
    return settings


@pytest.fixture(scope="session")
def target_url(security_settings: Settings) -> Iterator[str]:
    from sysup.api.app import create_app

    with live_server(create_app(security_settings)) as url:
        yield url


@pytest.fixture(scope="module")
def limited_server(security_settings: Settings) -> Iterator[str]:
    from sysup.api.app import create_app

    settings = security_settings.model_copy(update={"rate_limit_per_minute": 3, "max_pending_per_client": 2})
    with live_server(create_app(settings)) as url:
        yield url
