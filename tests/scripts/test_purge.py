"""``asud purge HASH`` on a real ``redis-server``: a failed build's answer is dropped so the next request
builds again; with ``[redis] url`` empty it starts the daemon's own server on the same data (and stops it),
or uses the one a running daemon has."""

from __future__ import annotations

import json
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from asud.errors import BuildError
from asud.store.embedded import EmbeddedRedis
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from tests.scripts.support import asud_on_reactor
from tests.store.support import redis, validated
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable

__all__ = ["redis"]


async def failed_build(records: BuildRecords) -> str:
    """A request whose build failed (its answer is kept for ``ttl_failure``); its request hash."""
    view = await records.submit(validated(), client="test/1")
    assert await records.started(view.image_key, "w1") is not None
    assert await records.failed(view.image_key, BuildError("Error: boom", stderr="err"), node="w1")
    return view.request_hash


@pytest_twisted.ensureDeferred
async def test_purge_drops_a_failed_answer(redis: Redis, redis_server: RedisProcess, tmp_path: Path) -> None:
    records = BuildRecords(redis)
    request_hash = await failed_build(records)
    config = tmp_path / "asud.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[redis]\nurl = {json.dumps(redis_server.url)}\n')

    purged = await asud_on_reactor("purge", request_hash, "--config", str(config))
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == f"purged {request_hash}"
    # the next identical request is a new build, queued again: nothing to purge while it is queued
    view = await records.submit(validated(), client="test/1")
    assert view.detail == "queued"
    again = await asud_on_reactor("purge", request_hash, "--config", str(config))
    assert again.returncode == 1 and f"nothing to purge for {request_hash}" in again.stderr


@pytest_twisted.ensureDeferred
async def test_purge_with_the_embedded_redis(tmp_path: Path) -> None:
    require_executable("redis-server", "redis-server")
    data = tmp_path / "data"
    config = tmp_path / "asud.toml"
    config.write_text(f'data_dir = "{data}"\n')
    embedded = EmbeddedRedis(data / "redis", reactor=reactor)

    # the daemon is not running: purge starts the server on the daemon's data, and stops it again
    await embedded.start()
    redis = Redis.from_url(embedded.url, timeout=1.0)
    try:
        request_hash = await failed_build(BuildRecords(redis))
    finally:
        await redis.disconnect()
        await embedded.stopService()
    assert not embedded.socket_path.exists() or not await _answers(embedded)
    purged = await asud_on_reactor("purge", request_hash, "--config", str(config))
    assert purged.returncode == 0, purged.stderr
    assert not await _answers(embedded), "purge left its redis-server running"

    # the daemon is running (its server answers on the socket): purge uses it and leaves it running
    await embedded.start()
    try:
        missing = await asud_on_reactor("purge", "0" * 64, "--config", str(config))
        assert missing.returncode == 1 and "nothing to purge" in missing.stderr
        assert await _answers(embedded)
    finally:
        await embedded.stopService()


async def _answers(embedded: EmbeddedRedis) -> bool:
    probe = Redis.from_url(embedded.url, timeout=0.5)
    try:
        return bool(await probe.ping())
    except Exception:
        return False
    finally:
        await probe.disconnect()
