"""The ImageBuilder cache over real HTTP: verify, unpack once, re-check cheaply, evict LRU, refuse tampers.

Ported from sysup's tests/imagebuilders/test_cache.py (same assertions). sysup's "threads unpack once"
became "concurrent builds share one download" (one daemon) and "two caches on one disk unpack once"
(flocks); "processes unpack once" runs three daemons' worth of child processes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, gatherResults
from twisted.internet.threads import deferToThread

from asud.build.imagebuilders import ImageBuilderCache
from asud.build.unpack import UnsafeArchive
from asud.errors import SignatureError, UpstreamError
from asud.upstream.fetch import Fetcher
from tests.build.factories import KEY, OTHER_KEY, make_target, serve, sign_dir

RELEASE = "releases/24.10.4"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Path, str, object]]:
    root = tmp_path / "upstream"
    root.mkdir()
    with serve(root) as (url, counter):
        yield root, url, counter


@pytest_twisted.async_yield_fixture()
async def fetcher() -> AsyncIterator[Fetcher]:
    made = Fetcher(timeout=10, retries=0)
    yield made
    await made.close()


def ib_gets(counter: object) -> int:
    return sum(n for path, n in counter.items() if "imagebuilder" in path)  # type: ignore[attr-defined]


async def pause(seconds: float = 0.01) -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


@pytest_twisted.ensureDeferred
async def test_ensure_downloads_verifies_and_unpacks(upstream, fetcher, tmp_path: Path) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "ath79/generic")
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    seen: list[tuple[int, int | None]] = []
    stages: list[str] = []
    ib = await cache.ensure(
        url,
        RELEASE,
        "ath79/generic",
        [KEY.public_key],
        progress=lambda d, t: seen.append((d, t)),
        stage=stages.append,
    )
    assert (ib / "Makefile").read_bytes().startswith(b"info:")
    assert (ib / "payload.bin").stat().st_size == 1000
    assert not (ib / "payload.bin").stat().st_mode & 0o222  # read-only in the cache
    assert seen and seen[-1][0] == seen[-1][1]
    assert stages == ["download", "unpack"]
    [entry] = cache.entries()
    assert entry.path == ib and entry.size == cache.usage_bytes() > 1000
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []

    # Warm: one conditional request for sha256sums, answered 304; nothing else is downloaded.
    before = dict(counter)
    stages.clear()
    assert await cache.ensure(url, RELEASE, "ath79/generic", [KEY.public_key], stage=stages.append) == ib
    delta = {path: n - before.get(path, 0) for path, n in counter.items() if n != before.get(path, 0)}
    assert delta == {f"/{RELEASE}/targets/ath79/generic/sha256sums": 1}
    assert stages == []


@pytest_twisted.ensureDeferred
async def test_xz_archives_too(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    make_target(root, "releases/23.05.5", "x86/64", suffix=".tar.xz")
    ib = await ImageBuilderCache(tmp_path / "c", fetcher, 10**9).ensure(
        url, "releases/23.05.5", "x86/64", [KEY.public_key]
    )
    assert (ib / "Makefile").is_file()


@pytest_twisted.ensureDeferred
async def test_new_upstream_build_replaces_the_old_entry(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    make_target(root, "snapshots", "x86/64", payload=b"a" * 100)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9, eviction_grace=0)
    first = await cache.ensure(url, "snapshots", "x86/64", [KEY.public_key])
    await pause()
    make_target(root, "snapshots", "x86/64", payload=b"b" * 100)
    second = await cache.ensure(url, "snapshots", "x86/64", [KEY.public_key])
    assert first != second
    assert (second / "payload.bin").read_bytes() == b"b" * 100
    assert not first.exists()
    assert [entry.path for entry in cache.entries()] == [second]


def _assert_nothing_cached(cache_root: Path) -> None:
    assert list((cache_root / "entries").iterdir()) == []
    assert list((cache_root / "tmp").iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_tampered_archive_is_refused_and_nothing_cached(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    directory = make_target(root, RELEASE, "x86/64")
    [archive] = directory.glob("*imagebuilder*")
    data = bytearray(archive.read_bytes())
    data[-5] ^= 0xFF
    archive.write_bytes(bytes(data))
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    with pytest.raises(SignatureError, match="sha256"):
        await cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    _assert_nothing_cached(tmp_path / "cache")


@pytest_twisted.ensureDeferred
async def test_tampered_listing_or_foreign_signature_is_refused(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    directory = make_target(root, RELEASE, "x86/64")
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    sums = directory / "sha256sums"
    original = sums.read_text()
    sums.write_text(original.replace(original[0], "0" if original[0] != "0" else "1", 1))
    with pytest.raises(SignatureError):
        await cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    sums.write_text(original)
    sign_dir(directory, OTHER_KEY)
    with pytest.raises(SignatureError, match="not trusted"):
        await cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    _assert_nothing_cached(tmp_path / "cache")
    assert list((tmp_path / "cache" / "sums").glob("*")) == []
    # The right key makes the same listing acceptable.
    assert (await cache.ensure(url, RELEASE, "x86/64", [KEY.public_key, OTHER_KEY.public_key])).is_dir()


@pytest_twisted.ensureDeferred
async def test_unsafe_archive_is_refused(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    top = "openwrt-imagebuilder-x86-64.Linux-x86_64"
    make_target(root, RELEASE, "x86/64", members=[{"name": f"{top}/../../escape", "data": b"x"}])
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    with pytest.raises(UnsafeArchive):
        await cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    _assert_nothing_cached(tmp_path / "cache")
    assert not (tmp_path / "escape").exists()


@pytest_twisted.ensureDeferred
async def test_no_imagebuilder_listed(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    directory = root / RELEASE / "targets" / "x86" / "64"
    directory.mkdir(parents=True)
    (directory / "profiles.json").write_text("{}")
    sign_dir(directory)
    with pytest.raises(UpstreamError, match="no ImageBuilder"):
        await ImageBuilderCache(tmp_path / "c", fetcher, 10**9).ensure(
            url, RELEASE, "x86/64", [KEY.public_key]
        )


@pytest_twisted.ensureDeferred
async def test_lru_eviction_keeps_an_entry_in_use(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    for target in ("a/one", "b/two", "c/three"):
        make_target(root, RELEASE, target, payload=target.encode() * 2000)
    keys = [KEY.public_key]
    # Room for two entries, not three.
    probe = ImageBuilderCache(tmp_path / "probe", fetcher, 10**9)
    one_size = probe.entries()[0].size if await probe.ensure(url, RELEASE, "a/one", keys) else 0
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, int(one_size * 2.5), eviction_grace=0)
    with await cache.lease(url, RELEASE, "a/one", keys) as lease:
        one = lease.path
        await pause()
        two = await cache.ensure(url, RELEASE, "b/two", keys)
        await pause()
        three = await cache.ensure(url, RELEASE, "c/three", keys)
        # "one" is the least recently used but in use, so "two" went instead.
        assert one.is_dir() and three.is_dir() and not two.exists()
        assert (one / "payload.bin").read_bytes().startswith(b"a/one")
    # Leaving the lease counts as a use: "three" is now the least recently used.
    await pause()
    two = await cache.ensure(url, RELEASE, "b/two", keys)
    assert two.is_dir() and one.is_dir() and not three.exists()
    assert cache.usage_bytes() <= cache.max_bytes


@pytest_twisted.ensureDeferred
async def test_grace_period_protects_a_just_returned_entry(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    for target in ("a/one", "b/two"):
        make_target(root, RELEASE, target)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 1, eviction_grace=60)
    one = await cache.ensure(url, RELEASE, "a/one", [KEY.public_key])
    two = await cache.ensure(url, RELEASE, "b/two", [KEY.public_key])
    assert one.is_dir() and two.is_dir()  # over budget, but both used just now
    assert await cache.evict() == []


@pytest_twisted.ensureDeferred
async def test_concurrent_builds_share_one_download(upstream, fetcher, tmp_path: Path) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "x86/64", payload=b"z" * 2_000_000)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    stages: list[str] = []
    results = await gatherResults(
        [cache.ensure(url, RELEASE, "x86/64", [KEY.public_key], stage=stages.append) for _ in range(4)]
    )
    assert len(set(results)) == 1 and len(results) == 4
    assert ib_gets(counter) == 1
    assert stages == ["download", "unpack"]


@pytest_twisted.ensureDeferred
async def test_two_caches_on_one_disk_unpack_once(upstream, tmp_path: Path) -> None:
    """Two caches on one directory (as two daemons would have) coordinate through the flocks."""
    root, url, counter = upstream
    make_target(root, RELEASE, "x86/64", payload=b"z" * 2_000_000)
    fetchers = [Fetcher(timeout=10, retries=0) for _ in range(2)]
    try:
        caches = [ImageBuilderCache(tmp_path / "cache", fetcher, 10**9) for fetcher in fetchers]
        results = await gatherResults(
            [cache.ensure(url, RELEASE, "x86/64", [KEY.public_key]) for cache in caches for _ in range(2)]
        )
    finally:
        for fetcher in fetchers:
            await fetcher.close()
    assert len(set(results)) == 1 and len(results) == 4
    assert ib_gets(counter) == 1


@pytest_twisted.ensureDeferred
async def test_a_cancelled_waiter_does_not_stop_the_shared_download(
    upstream, fetcher, tmp_path: Path
) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "x86/64", payload=b"z" * 2_000_000)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    waiters = []

    def on_stage(stage: str) -> None:
        if stage == "download":  # a second build wants the same ImageBuilder …
            waiters.append(cache.ensure(url, RELEASE, "x86/64", [KEY.public_key]))
        if stage == "unpack":  # … and gives up while the shared one is unpacking
            waiters[0].cancel()

    installer = cache.ensure(url, RELEASE, "x86/64", [KEY.public_key], stage=on_stage)
    await pause(0.001)
    while not waiters:
        await pause(0.01)
    with pytest.raises(CancelledError):
        await waiters[0]
    assert (await installer).is_dir()
    assert ib_gets(counter) == 1


@pytest_twisted.ensureDeferred
async def test_close_stops_a_download_and_leaves_nothing(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    make_target(root, RELEASE, "x86/64", payload=b"z" * 2_000_000)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    closed = []

    def on_stage(stage: str) -> None:
        if stage == "unpack":  # the daemon stops while tar runs
            reactor.callLater(0, lambda: closed.append(cache.close()))  # type: ignore[attr-defined]

    pending = cache.ensure(url, RELEASE, "x86/64", [KEY.public_key], stage=on_stage)
    with pytest.raises(CancelledError):
        await pending
    await closed[0]
    _assert_nothing_cached(tmp_path / "cache")


PROCESS_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from twisted.internet import task
    from asud.build.imagebuilders import ImageBuilderCache
    from asud.upstream.fetch import Fetcher
    from asud.upstream.usign import parse_public_key

    async def main(reactor, cache_root, url, key, start):
        time.sleep(max(0.0, float(start) - time.time()))
        fetcher = Fetcher(timeout=10, retries=0)
        cache = ImageBuilderCache(Path(cache_root), fetcher, 10**9)
        try:
            print(await cache.ensure(url, "releases/24.10.4", "x86/64", [parse_public_key(key)]))
        finally:
            await fetcher.close()

    task.react(lambda reactor, *args: task.Deferred.fromCoroutine(main(reactor, *args)), sys.argv[1:])
""")


@pytest_twisted.ensureDeferred
async def test_processes_unpack_once(upstream, tmp_path: Path) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "x86/64", payload=b"p" * 2_000_000)
    start = time.time() + 2.5

    def run_three() -> list[tuple[int, str, str]]:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", PROCESS_SCRIPT, str(tmp_path / "cache"), url,
                 KEY.public_key.to_text(), str(start)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for _ in range(3)
        ]
        outputs = [proc.communicate(timeout=60) for proc in procs]
        return [(proc.returncode, out, err) for proc, (out, err) in zip(procs, outputs, strict=True)]

    results = await deferToThread(run_three)
    assert all(code == 0 for code, _, _ in results), results
    assert len({out.strip() for _, out, _ in results}) == 1
    assert ib_gets(counter) == 1
