"""``build.json`` and the re-index: a flushed Redis loses no finished build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_twisted
from twisted.application.service import MultiService

from asud.build.stages import BuildStatus
from asud.errors import ImageTooBig
from asud.store.files import Store
from asud.store.records import BuildRecord, BuildRecords, TTLs
from asud.store.redis import Redis
from asud.store.reindex import (
    BUILD_JSON,
    ReindexService,
    read_build_json,
    read_build_jsons,
    reindex,
    to_build_json,
    write_build_json,
)
from tests.store.support import redis, validated

__all__ = ["redis"]

RESULT = {"id": "generic", "images": [{"name": "x.bin", "sha256": "0" * 64}], "manifest": {"luci": "1"}}


async def built(records: BuildRecords, files: Store, *, packages: list[str], ok: bool = True,
                defaults: str | None = None) -> tuple[str, BuildRecord]:
    """A build through its life, with ``build.json`` written as the pool writes it."""
    request = validated(packages=packages, defaults=defaults)
    await records.submit(request, client="luci/1")
    await records.started(request.image_key, "node-a")
    if ok:
        record = await records.done(request.image_key, RESULT, request.bin_dir, "out", "", node="node-a")
    else:
        error = ImageTooBig("Error: Selected packages exceed device storage", "", "too big")
        record = await records.failed(request.image_key, error, node="node-a")
    assert record is not None
    write_build_json(files, request.bin_dir, record)
    return request.request_hash, record


@pytest_twisted.ensureDeferred
async def test_build_json_round_trip(redis: Redis, tmp_path: Path) -> None:
    files = Store(tmp_path / "store")
    records = BuildRecords(redis)
    _, record = await built(records, files, packages=["a"])
    document = json.loads((files.root / record.bin_dir / BUILD_JSON).read_text())  # type: ignore[operator]
    assert document["format"] == 1 and document["status"] == "done" and document["result"] == RESULT
    assert document["finished_at"].endswith("+00:00") and document["node"] == "node-a"
    assert "entry" not in document and "seq" not in document
    again = read_build_json(document)
    assert to_build_json(again) == to_build_json(record) == document
    assert read_build_jsons(files) == [again]
    with pytest.raises(ValueError):
        write_build_json(files, record.bin_dir or "", BuildRecord("k", BuildStatus.QUEUED, record.stage, 0.0))


@pytest_twisted.ensureDeferred
async def test_flushed_redis_loses_no_finished_build(redis: Redis, tmp_path: Path) -> None:
    files = Store(tmp_path / "store")
    records = BuildRecords(redis)
    done_hash, done_record = await built(records, files, packages=["a"])
    failed_hash, _ = await built(records, files, packages=["b"], ok=False)
    private_hash, private = await built(records, files, packages=["c"], defaults="echo hi")
    before = {the_hash: await records.get(the_hash) for the_hash in (done_hash, failed_hash, private_hash)}
    (files.root / ("e" * 64)).mkdir()
    (files.root / ("e" * 64) / BUILD_JSON).write_text("{not json")  # ignored with a warning

    await redis.call("FLUSHALL")
    assert await records.get(done_hash) is None
    assert await reindex(redis, files) == 3
    for the_hash, view in before.items():
        assert await records.get(the_hash) == view
    assert {done_record.bin_dir, private.bin_dir} <= await records.live_bin_dirs()
    ttl = await redis.call("TTL", f"asud:build:{done_record.image_key}")
    assert TTLs().unversioned < ttl <= TTLs().unversioned + records.stale_keep
    # Nothing missing: nothing restored, and a record Redis has is never overwritten.
    await records.purge(done_hash)
    assert await reindex(redis, files) == 0
    assert (await records.get(done_hash)).expires_at < before[done_hash].expires_at  # type: ignore[operator,union-attr]


@pytest_twisted.ensureDeferred
async def test_long_stale_builds_are_not_restored(redis: Redis, tmp_path: Path) -> None:
    files = Store(tmp_path / "store")
    records = BuildRecords(redis, ttls=TTLs(unversioned=0))
    the_hash, _ = await built(records, files, packages=["a"])
    await redis.call("FLUSHALL")
    assert await reindex(redis, files, stale_keep=0) == 0
    assert await reindex(redis, files) == 1  # still within the stale keep: answered, and rebuilt on request
    view = await records.get(the_hash)
    assert view is not None and view.status is BuildStatus.DONE
    assert (await records.submit(validated(packages=["a"]))).status is BuildStatus.QUEUED


@pytest_twisted.ensureDeferred
async def test_service_runs_it_at_start(redis: Redis, tmp_path: Path) -> None:
    files = Store(tmp_path / "store")
    the_hash, _ = await built(BuildRecords(redis), files, packages=["a"])
    await redis.call("FLUSHALL")
    parent = MultiService()
    service = ReindexService(redis, files)
    service.setServiceParent(parent)
    parent.startService()
    assert service.ready is not None and await service.ready == 1
    assert await BuildRecords(redis).get(the_hash) is not None
    await parent.stopService()


@pytest_twisted.ensureDeferred
async def test_restored_builds_are_found_by_prefix(redis: Redis, tmp_path: Path) -> None:
    files = Store(tmp_path / "store")
    records = BuildRecords(redis)
    the_hash, record = await built(records, files, packages=["a"])
    await redis.call("FLUSHALL")
    assert await reindex(redis, files) == 1
    assert await records.find_request_hashes(the_hash[:15]) == [the_hash]
    assert await records.find_image_keys(record.image_key[:12]) == [record.image_key]
