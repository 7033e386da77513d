"""Disk budget: a round of the daemon's housekeeping (``asud.housekeeping.Housekeeping.run_once``) keeps
the ImageBuilder cache under ``[cache] imagebuilder_max_bytes`` and the files store (shared by the
daemons, ``[store] dir``) under ``[cache] store_max_bytes`` by evicting least-recently-used entries,
never one in use — an ImageBuilder leased by *another process* (a daemon building right now), or a result
still served (a build queued or done and fresh, by the records in the shared Redis)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread

from asud.build.imagebuilders import ImageBuilderCache
from asud.config import Config, load
from asud.housekeeping import Housekeeping
from asud.store.files import Store
from asud.store.records import BuildRecords
from asud.store.redis import Redis
from asud.upstream.fetch import Fetcher
from tests.build.factories import KEY, make_target, serve
from tests.store.support import redis, validated

__all__ = ["redis"]

RELEASE = "releases/24.10.4"
TARGETS = ("a/one", "b/two", "c/three")
#: Seconds the other process may take to lease its ImageBuilder.
HOLD_TIMEOUT = 30.0
#: Bytes of each stored result (one file of distinct content).
RESULT_SIZE = 100_000

#: Another daemon's build: holds the ImageBuilder of one target until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from twisted.internet import task, threads
    from asud.build.imagebuilders import ImageBuilderCache
    from asud.upstream.fetch import Fetcher
    from asud.upstream.usign import parse_public_key

    async def main(reactor, root, url, key, target):
        fetcher = Fetcher(timeout=10, retries=0)
        try:
            cache = ImageBuilderCache(Path(root), fetcher, 10**12)
            with await cache.lease(url, "releases/24.10.4", target, [parse_public_key(key)]):
                print("held", flush=True)
                await threads.deferToThread(sys.stdin.read)
        finally:
            await fetcher.close()

    task.react(lambda reactor, *args: task.Deferred.fromCoroutine(main(reactor, *args)), sys.argv[1:])
    """
)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "upstream"
    root.mkdir()
    for target in TARGETS:
        make_target(root, RELEASE, target, payload=target.encode().ljust(8) * 20_000)
    with serve(root) as (url, _counter):
        yield url


@pytest_twisted.async_yield_fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    made = Fetcher(timeout=10, retries=0)
    yield made
    await made.close()


def _age(path: Path, seconds_ago: float) -> None:
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def _target(cache: ImageBuilderCache, sha256: str) -> str:
    source = json.loads((cache.entries_dir / f"{sha256}.json").read_text())["source"]
    return str(source).split("/targets/")[1].rstrip("/")


def _targets(cache: ImageBuilderCache) -> dict[str, Path]:
    """target → the ``.json`` whose mtime is the entry's last use."""
    return {_target(cache, entry.sha256): cache.entries_dir / f"{entry.sha256}.json"
            for entry in cache.entries()}


def _config(tmp_path: Path, **cache: int) -> Config:
    return load(environ={}, data_dir=str(tmp_path / "node-a"), store={"dir": str(tmp_path / "store")},
                cache=cache)


def _hold(cache_root: Path, url: str, target: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache_root), url, KEY.public_key.to_text(), target],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None
    ready, _, _ = select.select([holder.stdout], [], [], HOLD_TIMEOUT)
    if not ready:
        holder.kill()
    assert ready and holder.stdout.readline().strip() == "held", "the other process did not take its lease"
    return holder


@pytest_twisted.ensureDeferred
async def test_prune_keeps_budgets_and_spares_what_is_in_use(tmp_path: Path, upstream: str, fetcher: Fetcher,
                                                             redis: Redis) -> None:
    keys = [KEY.public_key]
    ib_root = tmp_path / "node-a" / "imagebuilders"
    filler = ImageBuilderCache(ib_root, fetcher, 10**12)
    for target in TARGETS:
        await filler.ensure(upstream, RELEASE, target, keys)
    entry_size = max(entry.size for entry in filler.entries())
    config = _config(tmp_path, imagebuilder_max_bytes=int(entry_size * 2.5), store_max_bytes=350_000)
    cache = ImageBuilderCache(ib_root, fetcher, config.cache.imagebuilder_max_bytes)

    # The store, shared: results still served (a queued build, a fresh done one), the two oldest of all;
    # two expired ones and one Redis never knew (another cluster's leftovers), recently used.
    records = BuildRecords.from_config(redis, config)
    queued, fresh = validated(packages=["queued"]), validated(packages=["fresh"])
    expired = [validated(packages=[name]) for name in ("old", "older")]
    for request in (queued, fresh, *expired):
        await records.submit(request, client="test/1")
    for request in (fresh, *expired):
        assert await records.started(request.image_key, "node-b") is not None
        await records.done(request.image_key, {"images": []}, request.bin_dir, "", "", node="node-b")
    for request in expired:
        assert await records.purge(request.request_hash)
    unknown = validated(packages=["unknown"]).bin_dir
    files = Store(config.store_dir)
    ages = {queued.bin_dir: 3000, fresh.bin_dir: 2800, expired[0].bin_dir: 2400, expired[1].bin_dir: 1800,
            unknown: 600}
    for index, (bin_dir, age) in enumerate(ages.items()):
        files.write_bytes(bin_dir, "image.bin", bytes([index]) * RESULT_SIZE)
        _age(files.root / bin_dir, age)
    assert files.usage_bytes() == 5 * RESULT_SIZE > config.cache.store_max_bytes

    housekeeping = Housekeeping(config, records=records, files=files, imagebuilders=cache, clock=Clock())
    holder = await deferToThread(_hold, ib_root, upstream, "a/one")
    try:
        # Used 30, 20 and 10 minutes ago: "a/one" is the least recently used, but the other process holds it.
        for age, target in zip((1800, 1200, 600), TARGETS, strict=True):
            _age(_targets(cache)[target], age)
        await housekeeping.run_once()
        # "a/one" is the oldest but leased by the other process; "b/two" is the next LRU and went.
        assert set(_targets(cache)) == {"a/one", "c/three"}
    finally:
        await deferToThread(holder.communicate, "", 30)
    assert holder.returncode == 0
    assert cache.usage_bytes() <= config.cache.imagebuilder_max_bytes

    # The lease ended; "b/two" is needed again (newest; by a daemon with a roomier cache, so only the
    # housekeeping evicts). Now "a/one" is the LRU nobody holds, and it goes.
    await filler.ensure(upstream, RELEASE, "b/two", keys)
    _age(_targets(cache)["a/one"], 1800)
    _age(_targets(cache)["c/three"], 600)
    await housekeeping.run_once()
    assert cache.usage_bytes() <= config.cache.imagebuilder_max_bytes
    assert set(_targets(cache)) == {"b/two", "c/three"}

    # Store: the results still served stay although they are the oldest; the expired ones go, oldest
    # first, until the store fits its budget; the recently used one Redis never knew stays.
    assert files.exists(queued.bin_dir) and files.exists(fresh.bin_dir)
    assert not files.exists(expired[0].bin_dir) and not files.exists(expired[1].bin_dir)
    assert files.exists(unknown)
    assert files.usage_bytes() <= config.cache.store_max_bytes
    print(f"\nFIGURES disk-budget: imagebuilders kept=2/3 (held one spared) results kept=3/5 "
          f"usage={files.usage_bytes()}/{config.cache.store_max_bytes} served_removed=0")
