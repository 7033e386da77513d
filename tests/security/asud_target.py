"""The asud server the attack tests aim at: the demo catalog, a private ``redis-server``, no build pool
(every accepted build stays queued), an allow-list of extra repositories
(``https://repo.example.org/openwrt``) and ``defaults`` allowed; served on a real socket for the module.

Import ``asud_target`` and ``flush_stats`` into a test module (``from tests.security.asud_target import
…``). ``flush_stats`` waits for the statistics each answer writes without waiting, so no Redis call (and
its timeout) is left on the reactor when a test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest
import pytest_twisted

from asud.http.root import make_resource
from asud.http.state import AsudApp
from tests.http.client import LiveServer, listening
from tests.http.conftest import close_app, demo_settings, open_app
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree, demo_tree, demo_upstream_url

__all__ = ["ALLOWED_REPOSITORY", "Target", "asud_target", "demo_tree", "demo_upstream_url", "flush_stats"]

ALLOWED_REPOSITORY = "https://repo.example.org/openwrt"


@attrs.frozen
class Target:
    server: LiveServer
    app: AsudApp


@pytest_twisted.async_yield_fixture(scope="module")
async def asud_target(tmp_path_factory: pytest.TempPathFactory, demo_tree: DemoTree) -> AsyncIterator[Target]:
    redis = RedisProcess(require_executable("redis-server"), tmp_path_factory.mktemp("security-redis"))
    redis.start()
    config = demo_settings(
        tmp_path_factory.mktemp("security") / "data", demo_tree,
        requests={"repository_allow_list": [ALLOWED_REPOSITORY], "allow_defaults": True},
    )
    app = await open_app(config, redis.url, demo_tree)
    try:
        async with listening(make_resource(app), max_body_bytes=config.http.max_body_bytes) as live:
            yield Target(live, app)
    finally:
        await close_app(app)
        redis.stop()


@pytest_twisted.async_yield_fixture(autouse=True)
async def flush_stats(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "asud_target" in request.fixturenames:
        target: Target = request.getfixturevalue("asud_target")
        if target.app.stats is not None:
            await target.app.stats.flush()
