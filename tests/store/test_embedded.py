"""The embedded ``redis-server``: a child process on a unix socket whose data survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.application.service import MultiService

from asud.config import load
from asud.store.embedded import EmbeddedRedis, EmbeddedRedisError
from asud.store.redis import Redis
from tests.support.requirements import require_executable


@pytest.fixture
def short_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_executable("redis-server", "redis-server")
    return Path(tmp_path_factory.mktemp("embedded", numbered=True))


@pytest_twisted.ensureDeferred
async def test_runs_answers_and_keeps_its_data_across_restarts(short_dir: Path) -> None:
    config = load(None, environ={}, data_dir=str(short_dir))
    server = EmbeddedRedis.from_config(config)
    assert server.url == f"unix://{short_dir}/redis/redis.sock"
    await server.start()
    server.running = True
    client = Redis.from_url(server.url, timeout=1.0)
    try:
        assert await client.call("SET", "kept", "yes") == "OK"
        assert await client.call("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
        assert await client.call("CONFIG", "GET", "port") == ["port", "0"]  # no TCP port
    finally:
        await client.disconnect()
    await server.stopService()
    assert (short_dir / "redis").stat().st_mode & 0o777 == 0o700
    assert not server.socket_path.exists()  # redis-server removed it when it stopped

    # A plain MultiService parent starts it with startService(); ``ready`` fires once it answers.
    parent = MultiService()
    again = EmbeddedRedis(short_dir / "redis")
    again.setServiceParent(parent)
    parent.startService()
    assert again.ready is not None
    await again.ready
    client = Redis.from_url(again.url, timeout=1.0)
    try:
        assert await client.call("GET", "kept") == "yes"  # from the append-only file
    finally:
        await client.disconnect()
    await parent.stopService()


@pytest_twisted.ensureDeferred
async def test_missing_program_and_failing_start_are_clear(short_dir: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="apt-get install redis-server"):
        await EmbeddedRedis(short_dir / "a", executable="no-such-redis-server").start()
    (short_dir / "b").mkdir()
    (short_dir / "b" / "redis.log").mkdir()  # redis-server cannot open its log file: it exits at once
    with pytest.raises(EmbeddedRedisError, match="exited at start"):
        await EmbeddedRedis(short_dir / "b").start()
    with pytest.raises(EmbeddedRedisError, match="longer than 107 bytes"):
        await EmbeddedRedis(short_dir / ("x" * 120)).start()
