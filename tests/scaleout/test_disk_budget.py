"""Disk budget on a shared data directory: the real prune task keeps the ImageBuilder cache and the store
under ``ib_cache_max_bytes`` / ``store_max_bytes`` by evicting least-recently-used entries, never one in
use — an ImageBuilder leased by *another process* (a worker building right now), or a result still served."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from asud.store.files import Store
from sysup.builds.runtime import create_build_queue
from sysup.builds.service import BuildService
from sysup.config import Settings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.imagebuilders.cache import ImageBuilderCache
from sysup.upstream.fetch import Fetcher
from tests.builds.factories import validated
from tests.imagebuilders.factories import KEY, make_target, serve

RELEASE = "releases/24.10.4"
TARGETS = ("a/one", "b/two", "c/three")

HOLDER = textwrap.dedent(
    """
    import sys
    from sysup.imagebuilders.cache import ImageBuilderCache
    from sysup.upstream.fetch import Fetcher
    from asud.upstream.usign import parse_public_key
    root, url, key, target = sys.argv[1:5]
    with Fetcher(timeout=10, retries=0) as fetcher:
        cache = ImageBuilderCache(__import__("pathlib").Path(root), fetcher, 10**12)
        with cache.lease(url, "releases/24.10.4", target, [parse_public_key(key)]):
            print("held", flush=True)
            sys.stdin.read()
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


def _age(path: Path, seconds_ago: float) -> None:
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def test_prune_keeps_budgets_and_spares_what_is_in_use(tmp_path: Path, upstream: str) -> None:
    data = tmp_path / "data"
    keys = [KEY.public_key]
    with Fetcher(timeout=10, retries=0) as fetcher:
        filler = ImageBuilderCache(data / "imagebuilders", fetcher, 10**12)
        for target in TARGETS:
            filler.ensure(upstream, RELEASE, target, keys)
        entries = {entry.source.split("/targets/")[1].rstrip("/"): entry for entry in filler.entries()}
    entry_size = max(entry.size for entry in entries.values())
    # Used 30, 20 and 10 minutes ago: "a/one" is the least recently used.
    for age, target in zip((1800, 1200, 600), TARGETS, strict=True):
        _age(entries[target].path.with_suffix(".json"), age)

    # The store: one result still served (oldest of all), two expired ones.
    database_url = f"sqlite:///{tmp_path / 'sysup.db'}"
    upgrade_database(database_url)
    sessions = session_factory(create_engine_for(database_url))
    service = BuildService(sessions, lambda _build_id: None)
    live = service.submit(validated(packages=["live"]))
    assert live.bin_dir is None  # queued: its bin_dir is kept as well
    store = Store(data / "store")
    live_bin_dir = validated(packages=["live"]).bin_dir
    expired = [validated(packages=[name]).bin_dir for name in ("old", "newer")]
    for index, bin_dir in enumerate([live_bin_dir, *expired]):
        store.write_bytes(bin_dir, "image.bin", bytes([index]) * 100_000)
        _age(store.root / bin_dir, 3000 - index * 600)

    settings = Settings(
        data_dir=data, database_url=database_url,
        queue_url=f"sqlite:///{tmp_path / 'q.db'}",
        ib_cache_max_bytes=int(entry_size * 2.5), store_max_bytes=250_000,
        lease_timeout=timedelta(seconds=3),
    )
    queue = create_build_queue(settings, session_factory(create_engine_for(settings.resolved_database_url)))

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data / "imagebuilders"), upstream, KEY.public_key.to_text(),
         "a/one"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        queue.prune_task.call_local()  # what the periodic task runs on a worker
        left = {entry.source.split("/targets/")[1].rstrip("/") for entry in filler.entries()}
        # "a/one" is the oldest but leased by the other process; "b/two" is the next LRU and went.
        assert left == {"a/one", "c/three"}
    finally:
        holder.communicate(input="", timeout=30)
    assert holder.returncode == 0

    assert filler.usage_bytes() <= settings.ib_cache_max_bytes

    # The lease ended; "b/two" is needed again (newest). Now "a/one" is the LRU nobody holds, and it goes.
    with Fetcher(timeout=10, retries=0) as fetcher:
        ImageBuilderCache(data / "imagebuilders", fetcher, 10**12).ensure(upstream, RELEASE, "b/two", keys)
    for entry in filler.entries():
        if "/b/two/" not in entry.source:
            _age(entry.path.with_suffix(".json"), 1800 if "/a/one/" in entry.source else 600)
    queue.prune_task.call_local()
    assert filler.usage_bytes() <= settings.ib_cache_max_bytes
    left = {entry.source.split("/targets/")[1].rstrip("/") for entry in filler.entries()}
    assert left == {"b/two", "c/three"}

    # Store: the live result stays although it is the oldest; expired ones go, oldest first, to the budget.
    assert store.exists(live_bin_dir) and not store.exists(expired[0]) and store.exists(expired[1])
    assert store.usage_bytes() <= settings.store_max_bytes
