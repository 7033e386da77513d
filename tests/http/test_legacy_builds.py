"""Real builds through the 2017 API: the demo's second distribution, with its own download server and key,
built by a ``BuildPool`` in bwrap for 200, 413, 500 (+ log) and 501 (ported from sysup's slow test).

The daemon here is assembled by hand like ``tests.http.conftest.open_app`` (Redis, records, queue, stats,
the catalog of both distributions) plus a build pool, and served on a real socket.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from asud.build.pool import BuildPool
from asud.build.queue import BuildQueue
from asud.catalog import load_catalog
from asud.demo.generator import generate_tree
from asud.http.root import make_resource
from asud.http.state import AsudApp
from asud.store.files import Store
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from asud.store.stats import StatsRecorder
from asud.store.stats_queries import StatsQueries
from asud.upgrades.store import UpgradeCheckStore
from tests.catalog.helpers import TreeServer, demo_fetcher
from tests.http.client import Answer, LiveServer, TreqClient, listening
from tests.http.conftest import LoadedCatalog, demo_settings
from tests.http.legacy_bodies import assert_legacy_error, image_packages
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable
from tests.support.upstream import DemoTree

BUILD_TIMEOUT = 240.0
STARTED_STATUSES = {"queue", "initialize", "building"}


@attrs.define
class Daemon:
    app: AsudApp
    pool: BuildPool
    server: LiveServer


@pytest_twisted.async_yield_fixture
async def libremesh(tmp_path: Path, redis_server: RedisProcess, demo_tree: DemoTree) -> AsyncIterator[Daemon]:
    """A daemon building openwrt (24.10 only) and libremesh, each from its own download server and key."""
    require_executable("bwrap", "bubblewrap")
    require_executable("mksquashfs", "squashfs-tools")
    upstream = TreeServer(tmp_path / "libremesh")
    url = upstream.start()
    try:
        tree = generate_tree(tmp_path / "libremesh", base_url=url, distribution="libremesh")
        assert tree.public_key_text != demo_tree[0].public_key_text
        info, demo_url = demo_tree
        config = demo_settings(tmp_path / "data", demo_tree, distros={
            "openwrt": {"upstream_url": demo_url, "public_keys": [info.public_key_text],
                        "branches": ["24.10"], "snapshots": False},
            "libremesh": {"upstream_url": url, "public_keys": [tree.public_key_text], "alias": "LibreMesh",
                          "snapshots": False, "description": "mesh firmware"},
        }, build={"sandbox": "bwrap", "workers": 2})
        catalog, report = await load_catalog(config, demo_fetcher())
        assert report.ok, "\n".join(report.lines())
        redis = Redis.from_url(redis_server.url, timeout=config.redis.timeout)
        files = Store(config.store_dir)
        records = BuildRecords.from_config(redis, config)
        queue = BuildQueue(redis, lease_timeout=config.build.lease_timeout)
        await queue.ensure_group()
        app = AsudApp(
            config=config, files=files, catalog=LoadedCatalog(catalog), records=records, queue=queue,
            redis=redis, stats=StatsRecorder(redis, retention=config.retention.stats),
            stats_queries=StatsQueries(redis, retention=config.retention.stats),
            upgrade_checks=UpgradeCheckStore(redis),
        )
        pool = BuildPool(config, queue, records, files, demo_fetcher(), node="legacy-test", block=0.2,
                         stats=app.stats)
        await pool.start()
        try:
            async with listening(make_resource(app)) as server:
                yield Daemon(app, pool, server)
        finally:
            await pool.stopService()
            await app.stats.flush()
            await redis.disconnect()
    finally:
        await upstream.stop()


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def wait(client: TreqClient, kind: str, body: dict[str, Any]) -> Answer:
    """POST, then poll with the 12-character hash (as 2018 clients did) until the answer is final."""
    response = await client.post(f"/api/{kind}", json=body)
    waited = 0.0
    while response.status_code == 202:
        assert response.headers["x-imagebuilder-status"] in STARTED_STATUSES
        assert int(response.headers["x-build-queue-position"]) >= 0
        assert waited < BUILD_TIMEOUT, "build not finished in time"
        await sleep(0.3)
        waited += 0.3
        response = await client.get(f"/api/{kind}/{response.json()['request_hash'][:12]}")
    return response


async def libremesh_body(client: TreqClient, profile: str, board: str, *extra: str) -> dict[str, Any]:
    packages = await image_packages(client, "libremesh", "2024.1", "ath79/generic", profile)
    return {
        "distro": "LibreMesh",
        "version": "2024.1",
        "target": "ath79/generic",
        "board": board,
        "packages": [*packages, *extra],
    }


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_second_distribution_builds_from_its_own_upstream(libremesh: Daemon) -> None:
    client, url = libremesh.server.client, libremesh.server.url
    distros = {entry["name"]: entry for entry in (await client.get("/api/distros")).json()}
    assert distros["libremesh"] == {
        "name": "libremesh",
        "alias": "LibreMesh",
        "latest": "2024.1",
        "description": "mesh firmware",
    }
    versions = (await client.get("/api/versions?distro=libremesh")).json()
    assert [entry["version"] for entry in versions] == ["2024.1"]
    overview = (await client.get("/json/v1/overview.json")).json()
    assert overview["distros"]["libremesh"]["latest"] == ["2024.1"]

    # 200: the sysupgrade image, its log, files, image and manifest
    body = await libremesh_body(client, "tplink_tl-wr842n-v3", "tplink,tl-wr842n-v3")
    done = await wait(client, "upgrade-request", body)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert re.fullmatch(
        rf"{url}/store/[0-9a-f]{{64}}/libremesh-2024\.1-[0-9a-f]{{12}}-ath79-generic-tplink_tl-wr842n-v3-"
        r"squashfs-sysupgrade\.bin",
        answer["sysupgrade"],
    )
    image = await client.get(answer["sysupgrade"])
    assert image.status_code == 200 and len(image.content) > 256 * 1024
    assert "make image" in (await client.get(answer["log"])).text
    files = {entry["name"]: entry for entry in (await client.get(answer["files"])).json()}
    sysupgrade_name = answer["sysupgrade"].rsplit("/", 1)[1]
    assert files[sysupgrade_name]["sha256"] == hashlib.sha256(image.content).hexdigest()
    described = (await client.get(f"/api/image/{answer['image_hash'][:12]}")).json()
    assert described["distro"] == "libremesh" and described["sysupgrade"] == sysupgrade_name
    assert (
        described["model"] == "TP-Link TL-WR842N v3" and described["manifest_hash"] == answer["manifest_hash"]
    )
    manifest = (await client.get(f"/api/manifest/{answer['manifest_hash']}")).json()
    assert "base-files" in manifest and "kernel" in manifest
    lines = "".join(f"{name} - {version}\n" for name, version in sorted(manifest.items()))
    assert hashlib.sha256(lines.encode()).hexdigest() == answer["manifest_hash"]

    # 413: python3-light does not fit the small flash
    bigger = {**body, "packages": [*body["packages"], "python3-light"]}
    too_big = await wait(client, "upgrade-request", bigger)
    error = assert_legacy_error(too_big, 413)
    assert "is too big" in (await client.get(error["log"])).text

    # 501 for upgrade-request, 200 for build-request: the same build, factory image only
    factory = await libremesh_body(client, "tplink_cpe510-v1", "tplink,cpe510-v1")
    no_sysupgrade = await wait(client, "upgrade-request", factory)
    assert_legacy_error(no_sysupgrade, 501)
    built = await wait(client, "build-request", factory)
    assert built.status_code == 200, built.text
    assert "sysupgrade" not in built.json()
    assert built.json()["request_hash"] == no_sysupgrade.json()["request_hash"]
    assert any(name.endswith("squashfs-factory.bin") for name in built.json()["images"])

    # 500 with a log URL that serves the build log
    failed = await wait(client, "build-request",
                        await libremesh_body(client, "ubnt_bullet-m-xw", "ubnt,bullet-m-xw"))
    error = assert_legacy_error(failed, 500)
    log = await client.get(error["log"])
    assert log.status_code == 200 and "produced no images" in log.text

    assert await libremesh.app.stats.flush()  # requests are counted in memory until a flush writes them
    targets = (await client.get("/api/v1/stats/popular_targets")).json()
    stats = {entry["target"]: entry for entry in targets}
    assert stats["ath79"]["count"] == 5 and stats["ath79"]["build_seconds"] is not None
