"""The live log in Redis (``asud.store.logstream``) on a real ``redis-server``: what the sink writes, in
order, capped; what the pool adds (start, end); a real demo build's lines from every step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted

from asud.build.pool import BuildPool
from asud.build.stages import BuildStage, BuildStatus
from asud.errors import BuildError
from asud.store.logstream import LIVE_KEY, RedisLogSink, entries_text, log_key, read_entries
from asud.store.redis import Redis
from tests.build.support import eventually
from tests.build.test_pool import Setup, _demo_setup, demo, finished
from tests.store.support import redis, validated
from tests.support.upstream import demo_tree

__all__ = ["demo", "demo_tree", "redis"]


@pytest_twisted.ensureDeferred
async def test_lines_statuses_and_end_in_order_with_their_fields(redis: Redis) -> None:
    sink = RedisLogSink(redis)
    sink.begin("key1", "node-a")
    sink.status("key1", BuildStage.DOWNLOAD_IMAGEBUILDER)
    for number in range(1200):  # more than one batch
        sink.line("key1", "make image", f"line {number}")
    sink.end("key1", "Error: it broke")
    await sink.flushed("key1")
    entries = await read_entries(redis, log_key("key1"), count=5000)
    assert [entry.kind for entry in entries[:2]] == ["start", "status"]
    assert entries[1].text == "download_imagebuilder"
    lines = [entry for entry in entries if entry.kind == "line"]
    assert [entry.text for entry in lines] == [f"line {number}" for number in range(1200)]
    assert {entry.step for entry in lines} == {"make image"} and all(entry.t > 0 for entry in lines)
    assert entries[-1].kind == "end" and entries[-1].text == "failed: Error: it broke"
    # Every entry is on the stream of every build too, with its key.
    live = await read_entries(redis, LIVE_KEY, count=5000)
    assert len(live) == len(entries) and {entry.key for entry in live} == {"key1"}
    # Read on from an id: nothing twice.
    after = await read_entries(redis, log_key("key1"), entries[100].id, count=5)
    assert after[0].id == entries[101].id
    assert 0 < await redis.call("TTL", log_key("key1")) <= 2 * 86400


@pytest_twisted.ensureDeferred
async def test_the_stream_is_capped(redis: Redis) -> None:
    sink = RedisLogSink(redis, maxlen=100, live_maxlen=100)
    for number in range(2000):
        sink.line("key2", "make image", f"line {number}")
    await sink.flushed("key2")
    length = int(await redis.call("XLEN", log_key("key2")))
    assert 100 <= length < 400  # MAXLEN ~ trims whole nodes
    last = (await read_entries(redis, log_key("key2"), count=5000))[-1]
    assert last.text == "line 1999"


@pytest_twisted.ensureDeferred
async def test_redis_away_drops_nothing_silently(redis: Redis, redis_server: Any) -> None:
    sink = RedisLogSink(redis, max_pending=10)
    redis_server.stop()
    for number in range(30):
        sink.line("key3", "make image", f"line {number}")
    await sink.flushed("key3")  # the writes failed (logged), nothing raised
    redis_server.start()
    sink.line("key3", "make image", "after")
    await sink.flushed("key3")
    await eventually(lambda: read_entries(redis, log_key("key3")).addCallback(bool))
    texts = [entry.text for entry in await read_entries(redis, log_key("key3"))]
    assert texts[-1] == "after"


def test_entries_read_like_build_log() -> None:
    from asud.store.logstream import LogEntry

    entries = [LogEntry("1-0", "line", 1.0, "asud", "hello"), LogEntry("2-0", "line", 1.0, "asud", "again"),
               LogEntry("3-0", "status", 1.0, "status", "building_image"),
               LogEntry("4-0", "line", 1.0, "make image", "x"), LogEntry("5-0", "end", 1.0, "end", "done")]
    text, step = entries_text(entries)
    assert text == "==> asud\nhello\nagain\n==> stage: building_image\n==> make image\nx\n"
    assert step == "make image"


@pytest_twisted.ensureDeferred
async def test_the_pool_writes_start_and_end(redis: Redis, tmp_path: Path) -> None:
    setup = Setup(redis, tmp_path)
    await setup.queue.ensure_group()
    try:
        ok, broken = validated(), validated(packages=["htop"])
        for request in (ok, broken):
            await setup.records.submit(request, client="test/1")
        pool = setup.pool()
        await pool.start()
        await eventually(lambda: len(setup.builder.builds) == 1)
        job, _, sink = setup.builder.builds[0]
        sink.line(job["image_key"], "make image", "working")
        setup.builder.finish(0)
        await eventually(lambda: len(setup.builder.builds) == 2)
        job2, deferred2, _ = setup.builder.builds[1]
        deferred2.errback(BuildError("Error: no luck"))
        await finished(setup, broken, BuildStatus.FAILED)
        await finished(setup, ok, BuildStatus.DONE)
        await pool.sink.flushed(job2["image_key"])  # type: ignore[attr-defined]
        first = await read_entries(redis, log_key(job["image_key"]))
        assert [(entry.kind, entry.text) for entry in first] == [
            ("start", "node-a"), ("status", "download_imagebuilder"), ("line", "working"), ("end", "done")]
        second = await read_entries(redis, log_key(job2["image_key"]))
        assert second[-1].kind == "end" and second[-1].text == "failed: Error: no luck"
    finally:
        await setup.stop()


@pytest_twisted.ensureDeferred
async def test_a_real_build_streams_every_step(redis: Redis, tmp_path: Path, demo: Any) -> None:
    from tests.catalog.helpers import demo_fetcher, load_demo_catalog
    from tests.support.requirements import require_executable

    require_executable("bwrap", "bubblewrap")
    require_executable("mksquashfs", "squashfs-tools")
    from asud.build.request import parse_build_request
    from asud.build.validate import RequestLimits, validate_request

    catalog = await load_demo_catalog(demo)
    setup, config = _demo_setup(redis, tmp_path, demo)
    await setup.queue.ensure_group()
    pool = BuildPool(config, setup.queue, setup.records, setup.files, demo_fetcher(), node="node-a",
                     block=0.1)
    setup.pools.append(pool)
    try:
        request = await validate_request(parse_build_request(
            {"version": "24.10.4", "target": "ath79/generic", "profile": "tplink,archer-c7-v5",
             "packages": ["htop"], "client": "test/1"}), catalog, RequestLimits())
        await setup.records.submit(request, client="test/1")
        await pool.start()
        await finished(setup, request, BuildStatus.DONE, timeout=120)
        await pool.sink.flushed(request.image_key)  # type: ignore[attr-defined]
        entries = await read_entries(redis, log_key(request.image_key), count=100_000)
        texts = [entry.text for entry in entries if entry.step == "asud"]
        assert any("downloading the ImageBuilder" in text for text in texts), texts
        assert any("downloaded and verified; unpacking" in text for text in texts), texts
        assert any("packages prefetched and verified" in text for text in texts), texts
        assert any(text.startswith("storing") for text in texts), texts
        steps = {entry.step for entry in entries}
        assert "make image" in steps, steps
        assert entries[0].kind == "start" and entries[-1].kind == "end" and entries[-1].text == "done"
        stages = [entry.text for entry in entries if entry.kind == "status"]
        assert stages[0] == "download_imagebuilder" and "building_image" in stages
        assert all("\r" not in entry.text for entry in entries)
        # build.log in the store has the same lines.
        stored = setup.files.resolve(request.bin_dir, "build.log").read_text()
        assert "==> make image" in stored and "packages prefetched and verified" in stored
    finally:
        await setup.stop()
