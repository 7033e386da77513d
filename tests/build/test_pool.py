"""The build pool on a real ``redis-server``: slots, records, leases, hand-back on stop, attempts.

Most tests run the pool with a scripted builder (a stand-in for the pipeline that the test finishes,
fails or watches being cancelled), so the pool's own behaviour is what is tested; the last ones run the
real pipeline with bwrap and the demo ImageBuilders end to end.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall

from asud.build.logsink import LogSink
from asud.build.pipeline import BuildOutcome
from asud.build.pool import BuildPool, log_header
from asud.build.queue import BuildQueue
from asud.build.stages import BuildStage, BuildStatus
from asud.build.workspace import create_workspace
from asud.config import Config, load
from asud.errors import ImageTooBig
from asud.store.files import Store
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from asud.store.reindex import BUILD_JSON
from tests.build.support import eventually, sleep
from tests.store.support import redis, validated
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable
from tests.support.upstream import demo_tree

__all__ = ["demo_tree", "redis"]


class ScriptedBuilder:
    """Stands in for the pipeline: each build waits until the test ends it."""

    def __init__(self) -> None:
        self.builds: list[tuple[dict[str, Any], Deferred[BuildOutcome], LogSink | None]] = []
        self.cancelled: list[str] = []
        self.closed = False

    def build(self, job: dict[str, Any], *, sink: LogSink | None = None, may_store: Any = None
              ) -> Deferred[BuildOutcome]:
        def cancel(_: Deferred[BuildOutcome]) -> None:
            self.cancelled.append(job["image_key"])

        deferred: Deferred[BuildOutcome] = Deferred(cancel)
        self.builds.append((job, deferred, sink))
        if sink is not None:
            sink.status(job["image_key"], BuildStage.DOWNLOAD_IMAGEBUILDER)
        return deferred

    def check(self) -> Deferred[None]:
        return succeed(None)

    def close(self) -> Deferred[None]:
        self.closed = True
        return succeed(None)

    def finish(self, index: int = 0) -> None:
        job, deferred, _ = self.builds[index]
        result = {"id": job["profile"], "images": [{"name": "x.bin", "sha256": "0" * 64}], "manifest": {}}
        deferred.callback(BuildOutcome(result, job["bin_dir"], "out", "err"))

    def running(self) -> int:
        return sum(1 for _, deferred, _ in self.builds if not deferred.called)


def make_config(tmp_path: Path, **build: Any) -> Config:
    return load(environ={}, data_dir=str(tmp_path / "data"),
                build={"workers": 1, "lease_timeout": 5, "lease_renew_interval": 1, **build})


class Setup:
    def __init__(self, redis: Redis, tmp_path: Path, **build: Any) -> None:
        self.config = make_config(tmp_path, **build)
        self.queue = BuildQueue(redis, lease_timeout=self.config.build.lease_timeout)
        self.records = BuildRecords.from_config(redis, self.config)
        self.files = Store(self.config.store_dir)
        self.builder = ScriptedBuilder()
        self.pools: list[BuildPool] = []

    def pool(self, node: str = "node-a", builder: Any = None) -> BuildPool:
        made = BuildPool(self.config, self.queue, self.records, self.files, None,  # type: ignore[arg-type]
                         node=node, pipeline=builder or self.builder, block=0.1)
        self.pools.append(made)
        return made

    async def stop(self) -> None:
        for pool in self.pools:
            if pool.running:
                await pool.stopService()


@pytest_twisted.async_yield_fixture
async def setup(redis: Redis, tmp_path: Path) -> AsyncIterator[Setup]:
    made = Setup(redis, tmp_path, lease_timeout=5, lease_renew_interval=1)
    await made.queue.ensure_group()
    yield made
    await made.stop()


def status(setup: Setup, request: Any) -> Deferred[BuildStatus]:
    return setup.records.get(request.request_hash).addCallback(lambda view: view.status)


async def finished(setup: Setup, request: Any, wanted: BuildStatus | None, timeout: float = 10.0) -> None:
    """Wait until the build's record is finished (``wanted``, if given) and the pools are idle again
    (``build.json`` written, the entry acknowledged)."""
    await eventually(lambda: status(setup, request).addCallback(
        lambda found: found is wanted if wanted is not None else found.is_finished), timeout=timeout)
    for pool in setup.pools:
        await pool.idle()


@pytest_twisted.ensureDeferred
async def test_a_build_is_taken_built_recorded_and_acknowledged(setup: Setup) -> None:
    request = validated()
    await setup.records.submit(request, client="test/1")
    pool = setup.pool()
    await pool.start()
    await eventually(lambda: setup.builder.builds)
    job, _, _ = setup.builder.builds[0]
    assert job == {**request.job(), "log_header": log_header("node-a")}  # the job, and who builds it
    assert log_header("node-a").startswith("asud ") and log_header("node-a").endswith(" on node node-a")
    view = await setup.records.get(request.request_hash)
    assert view.status is BuildStatus.STARTED and view.node == "node-a"
    await eventually(lambda: setup.records.get(request.request_hash).addCallback(
        lambda view: view.stage is BuildStage.DOWNLOAD_IMAGEBUILDER))  # stages reach the record
    setup.builder.finish()
    await finished(setup, request, BuildStatus.DONE)
    view = await setup.records.get(request.request_hash)
    assert view.result["images"][0]["name"] == "x.bin" and view.stdout == "out" and view.stderr == "err"
    await eventually(lambda: setup.queue.length().addCallback(lambda n: n == 0))
    assert await setup.queue.pending() == 0
    document = json.loads(setup.files.resolve(request.bin_dir, BUILD_JSON).read_text())
    assert document["status"] == "done" and document["image_key"] == request.image_key
    assert document["job"] == request.job()


@pytest_twisted.ensureDeferred
async def test_a_starting_pool_removes_workspaces_a_killed_daemon_left(setup: Setup, tmp_path: Path) -> None:
    root = setup.config.workspace_dir
    (root / "ws-killed" / "build_dir").mkdir(parents=True)  # a workspace and its lock file nobody holds
    (root / "ws-killed.lock").touch()
    ib_dir = tmp_path / "ib"
    (ib_dir / "scripts").mkdir(parents=True)
    live = create_workspace(ib_dir, root)  # another pool's, in use
    try:
        await setup.pool().start()
        assert sorted(path.name for path in root.iterdir()) == [live.path.name, f"{live.path.name}.lock"]
    finally:
        live.cleanup()


@pytest_twisted.ensureDeferred
async def test_workers_bound_the_builds_at_once(redis: Redis, tmp_path: Path) -> None:
    setup = Setup(redis, tmp_path, workers=2)
    await setup.queue.ensure_group()
    try:
        requests = [validated(packages=[name]) for name in ("a", "b", "c")]
        for request in requests:
            await setup.records.submit(request, client="test/1")
        await setup.pool().start()
        await eventually(lambda: len(setup.builder.builds) == 2)
        await sleep(0.3)
        assert len(setup.builder.builds) == 2 and setup.builder.running() == 2
        setup.builder.finish(0)
        await eventually(lambda: len(setup.builder.builds) == 3)
        assert setup.builder.running() == 2
        assert [job["image_key"] for job, _, _ in setup.builder.builds] == [r.image_key for r in requests]
    finally:
        await setup.stop()


@pytest_twisted.ensureDeferred
async def test_a_failure_is_recorded_with_its_kind(setup: Setup) -> None:
    request = validated()
    await setup.records.submit(request, client="test/1")
    await setup.pool().start()
    await eventually(lambda: setup.builder.builds)
    too_big = "Error: Selected packages exceed device storage"
    setup.builder.builds[0][1].errback(ImageTooBig(too_big, "o", "e"))
    await finished(setup, request, BuildStatus.FAILED)
    view = await setup.records.get(request.request_hash)
    assert view.error_kind == "ImageTooBig" and view.detail == too_big
    assert (view.stdout, view.stderr) == ("o", "e")
    assert await setup.queue.length() == 0
    document = json.loads(setup.files.resolve(request.bin_dir, BUILD_JSON).read_text())
    assert document["status"] == "failed" and document["error_kind"] == "ImageTooBig"


@pytest_twisted.ensureDeferred
async def test_an_unexpected_error_is_an_internal_failure(setup: Setup) -> None:
    request = validated()
    await setup.records.submit(request, client="test/1")
    await setup.pool().start()
    await eventually(lambda: setup.builder.builds)
    setup.builder.builds[0][1].errback(RuntimeError("boom"))
    await finished(setup, request, BuildStatus.FAILED)
    view = await setup.records.get(request.request_hash)
    assert view.detail == "Error: internal server error (RuntimeError)" and "boom" in view.stderr


@pytest_twisted.ensureDeferred
async def test_stop_hands_running_builds_back_and_another_daemon_builds_them(setup: Setup) -> None:
    request = validated()
    await setup.records.submit(request, client="test/1")
    pool = setup.pool()
    await pool.start()
    await eventually(lambda: setup.builder.builds)
    started = time.monotonic()
    await pool.stopService()
    assert time.monotonic() - started < 2
    assert setup.builder.cancelled == [request.image_key] and setup.builder.closed
    view = await setup.records.get(request.request_hash)
    assert view.status is BuildStatus.QUEUED and view.queue_position == 0  # never left "started"
    assert await setup.queue.length() == 1 and await setup.queue.pending() == 0  # never lost
    # Another daemon takes it at once (no lease to wait for) and builds it.
    other = ScriptedBuilder()
    await setup.pool("node-b", other).start()
    await eventually(lambda: other.builds)
    other.finish()
    await finished(setup, request, BuildStatus.DONE)
    assert (await setup.records.get(request.request_hash)).node == "node-b"


@pytest_twisted.ensureDeferred
async def test_an_idle_pool_stops_quickly(setup: Setup) -> None:
    pool = setup.pool()
    await pool.start()
    await sleep(0.2)
    started = time.monotonic()
    await pool.stopService()
    assert time.monotonic() - started < 1
    assert not pool.running


@pytest_twisted.ensureDeferred
async def test_a_finished_build_is_not_built_again(setup: Setup) -> None:
    request = validated()
    await setup.records.submit(request, client="test/1")
    await setup.pool().start()
    await eventually(lambda: setup.builder.builds)
    setup.builder.finish()
    await finished(setup, request, BuildStatus.DONE)
    await setup.queue.add(request.image_key)  # a duplicate entry (as a re-sent task would be)
    await eventually(lambda: setup.queue.length().addCallback(lambda n: n == 0))
    assert len(setup.builder.builds) == 1


@pytest_twisted.ensureDeferred
async def test_the_lease_is_renewed_while_a_build_runs(redis: Redis, tmp_path: Path) -> None:
    setup = Setup(redis, tmp_path, lease_timeout=0.4, lease_renew_interval=0.1)
    await setup.queue.ensure_group()
    try:
        request = validated()
        await setup.records.submit(request, client="test/1")
        await setup.pool().start()
        await eventually(lambda: setup.builder.builds)
        await sleep(1.0)  # well past the lease
        assert await setup.queue.take("node-b", block=0) is None  # nobody can claim it
        assert setup.builder.cancelled == []
        setup.builder.finish()
        await finished(setup, request, BuildStatus.DONE)
    finally:
        await setup.stop()


@pytest_twisted.ensureDeferred
async def test_a_build_taken_over_by_another_daemon_is_stopped_here(redis: Redis, tmp_path: Path) -> None:
    setup = Setup(redis, tmp_path, lease_timeout=0.2, lease_renew_interval=0.6)
    await setup.queue.ensure_group()
    try:
        request = validated()
        await setup.records.submit(request, client="test/1")
        await setup.pool().start()
        await eventually(lambda: setup.builder.builds)
        await sleep(0.3)  # our lease lapsed (renewals are too slow on purpose): node-b claims the entry
        entry = await setup.queue.take("node-b", block=0)
        assert entry is not None and entry.image_key == request.image_key
        assert await setup.records.started(request.image_key, "node-b", entry.id) is not None
        node_b = LoopingCall(setup.queue.renew, entry)  # node-b is alive and keeps its lease
        node_b.clock = reactor
        node_b.start(0.05)
        try:
            await eventually(lambda: setup.builder.cancelled)  # our next renewal finds out and stops
            await sleep(0.5)
            assert setup.builder.cancelled == [request.image_key] and len(setup.builder.builds) == 1
            view = await setup.records.get(request.request_hash)
            assert view.status is BuildStatus.STARTED and view.node == "node-b"  # left to the new owner
            assert await setup.queue.pending() == 1  # its entry too
        finally:
            node_b.stop()
    finally:
        await setup.stop()


@pytest_twisted.ensureDeferred
async def test_a_build_that_keeps_killing_daemons_is_given_up(redis: Redis, tmp_path: Path) -> None:
    setup = Setup(redis, tmp_path, lease_timeout=0.2, max_attempts=1)
    await setup.queue.ensure_group()
    try:
        request = validated()
        await setup.records.submit(request, client="test/1")
        entry = await setup.queue.take("dead-daemon", block=0)  # delivered once, then its daemon "died"
        await setup.records.started(request.image_key, "dead-daemon", entry.id)
        await sleep(0.3)
        await setup.pool().start()
        await finished(setup, request, BuildStatus.FAILED)
        view = await setup.records.get(request.request_hash)
        assert view.error_kind == "BuildAbandoned" and "abandoned 1 times" in view.detail
        assert setup.builder.builds == []
        assert await setup.queue.length() == 0
    finally:
        await setup.stop()


async def reachable(redis: Redis) -> bool:
    try:
        await redis.call("PING")
    except Exception:
        return False
    return True


@pytest_twisted.ensureDeferred
async def test_redis_away_then_back(setup: Setup, redis: Redis, redis_server: RedisProcess) -> None:
    pool = setup.pool()
    await pool.start()
    redis_server.stop()
    await sleep(1.5)  # the taker fails, waits, retries
    redis_server.start()
    await eventually(lambda: Deferred.fromCoroutine(reachable(redis)))
    request = validated()
    await setup.records.submit(request, client="test/1")
    await eventually(lambda: setup.builder.builds)
    setup.builder.finish()
    await finished(setup, request, BuildStatus.DONE)


@pytest_twisted.ensureDeferred
async def test_a_build_finished_while_redis_is_away_is_recorded_when_it_is_back(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Redis (append-only, as the daemon runs its own) goes away while a build runs: the finished build is
    recorded and acknowledged once Redis is back — it is not built a second time."""
    server = RedisProcess(require_executable("redis-server"), tmp_path_factory.mktemp("aof"), appendonly=True)
    server.start()
    redis = Redis.from_url(server.url, timeout=0.5)
    made = Setup(redis, tmp_path, lease_timeout=30, lease_renew_interval=1)
    try:
        await made.queue.ensure_group()
        request = validated()
        await made.records.submit(request, client="test/1")
        pool = made.pool()
        await pool.start()
        await eventually(lambda: made.builder.builds)
        server.stop()
        made.builder.finish()  # the build ends while Redis is away: nothing can be recorded yet
        await sleep(1.5)
        server.start()
        await eventually(lambda: Deferred.fromCoroutine(reachable(redis)), timeout=15)
        await finished(made, request, BuildStatus.DONE, timeout=30)
        assert len(made.builder.builds) == 1, "recorded, not built again"
        assert await made.queue.pending() == 0
    finally:
        await made.stop()
        await redis.disconnect()
        server.stop()


@pytest_twisted.ensureDeferred
async def test_workers_zero_takes_nothing(redis: Redis, tmp_path: Path) -> None:
    setup = Setup(redis, tmp_path, workers=0)
    await setup.queue.ensure_group()
    request = validated()
    await setup.records.submit(request, client="test/1")
    pool = setup.pool()
    await pool.start()
    await sleep(0.3)
    assert setup.builder.builds == []
    await pool.stopService()
    assert (await setup.records.get(request.request_hash)).status is BuildStatus.QUEUED


# -- the real pipeline ------------------------------------------------------------------------------------

def _demo_setup(redis: Redis, tmp_path: Path, demo_tree: Any) -> tuple[Setup, Config]:
    from tests.catalog.helpers import demo_config

    config = demo_config(demo_tree, data_dir=str(tmp_path / "data"), build={"kill_grace": 1})
    setup = Setup(redis, tmp_path)
    setup.config = config
    setup.files = Store(config.store_dir)
    setup.records = BuildRecords.from_config(redis, config)
    return setup, config


@pytest.fixture(scope="module")
def demo(demo_tree: Any) -> Any:
    return demo_tree


@pytest_twisted.ensureDeferred
async def test_end_to_end_with_the_demo_imagebuilder(redis: Redis, tmp_path: Path, demo: Any) -> None:
    from tests.catalog.helpers import demo_fetcher, load_demo_catalog
    from tests.support.requirements import require_executable

    require_executable("bwrap", "bubblewrap")
    require_executable("mksquashfs", "squashfs-tools")
    from asud.build.request import parse_build_request
    from asud.build.validate import RequestLimits, validate_request

    catalog = await load_demo_catalog(demo)
    setup, config = _demo_setup(redis, tmp_path, demo)
    await setup.queue.ensure_group()
    lines: list[tuple[str, str, str]] = []

    class Lines:
        def line(self, image_key: str, step: str, text: str) -> None:
            lines.append((image_key, step, text))

        def status(self, image_key: str, stage: BuildStage) -> None:
            pass

    pool = BuildPool(config, setup.queue, setup.records, setup.files, demo_fetcher(), node="node-a",
                     sink=Lines(), block=0.1)
    setup.pools.append(pool)
    try:
        request = await validate_request(parse_build_request(
            {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
             "packages": ["htop"], "client": "test/1"}), catalog, RequestLimits())
        await setup.records.submit(request, client="test/1")
        await pool.start()
        await finished(setup, request, None, timeout=120)
        view = await setup.records.get(request.request_hash)
        assert view.status is BuildStatus.DONE, (view.detail, view.stderr[-2000:])
        assert view.result["images"] and "htop" in view.result["manifest"]
        assert {"build.log", BUILD_JSON} <= set(setup.files.files(request.bin_dir))
        assert any(step == "make image" for _, step, _ in lines)
        # the first line of the log, in build.log and to the sink: which asud on which node built it
        head = setup.files.resolve(request.bin_dir, "build.log").read_text().splitlines()[:2]
        assert head == ["==> asud", log_header("node-a")], head  # build.log heads each step "==> step"
        assert lines[0] == (request.image_key, "asud", log_header("node-a"))
        assert await setup.queue.length() == 0
    finally:
        await setup.stop()


@pytest_twisted.ensureDeferred
async def test_stopping_during_a_real_build_hands_it_back(redis: Redis, tmp_path: Path, demo: Any) -> None:
    from tests.catalog.helpers import demo_fetcher, load_demo_catalog
    from tests.support.requirements import require_executable

    require_executable("bwrap", "bubblewrap")
    from asud.build.request import parse_build_request
    from asud.build.validate import RequestLimits, validate_request

    catalog = await load_demo_catalog(demo)
    setup, config = _demo_setup(redis, tmp_path, demo)
    await setup.queue.ensure_group()
    stages: list[BuildStage] = []

    class Stages:
        def line(self, image_key: str, step: str, text: str) -> None:
            pass

        def status(self, image_key: str, stage: BuildStage) -> None:
            stages.append(stage)

    pool = BuildPool(config, setup.queue, setup.records, setup.files, demo_fetcher(), node="node-a",
                     sink=Stages(), block=0.1)
    request = await validate_request(parse_build_request(
        {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": ["curl"],
         "client": "test/1"}), catalog, RequestLimits())
    await setup.records.submit(request, client="test/1")
    await pool.start()
    await eventually(lambda: BuildStage.VALIDATE_REVISION in stages, timeout=60)  # `make info` runs
    await pool.stopService()
    view = await setup.records.get(request.request_hash)
    assert view.status is BuildStatus.QUEUED
    assert await setup.queue.length() == 1 and await setup.queue.pending() == 0
    assert not list((config.workspace_dir).iterdir())
    assert not setup.files.exists(request.bin_dir)
