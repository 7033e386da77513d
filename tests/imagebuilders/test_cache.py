"""The ImageBuilder cache over real HTTP: verify, unpack once, re-check cheaply, evict LRU, refuse tampers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asud.errors import SignatureError, UpstreamError
from sysup.imagebuilders.cache import ImageBuilderCache
from sysup.imagebuilders.unpack import UnsafeArchive
from sysup.upstream.fetch import Fetcher
from tests.imagebuilders.factories import KEY, OTHER_KEY, make_target, serve, sign_dir

RELEASE = "releases/24.10.4"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Path, str, object]]:
    root = tmp_path / "upstream"
    root.mkdir()
    with serve(root) as (url, counter):
        yield root, url, counter


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(timeout=10, retries=0) as fetcher:
        yield fetcher


def ib_gets(counter: object) -> int:
    return sum(n for path, n in counter.items() if "imagebuilder" in path)  # type: ignore[attr-defined]


def test_ensure_downloads_verifies_and_unpacks(upstream, fetcher, tmp_path: Path) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "ath79/generic")
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    seen: list[tuple[int, int | None]] = []
    stages: list[str] = []
    ib = cache.ensure(
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
    assert cache.ensure(url, RELEASE, "ath79/generic", [KEY.public_key], stage=stages.append) == ib
    delta = {path: n - before.get(path, 0) for path, n in counter.items() if n != before.get(path, 0)}
    assert delta == {f"/{RELEASE}/targets/ath79/generic/sha256sums": 1}
    assert stages == []


def test_xz_archives_too(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    make_target(root, "releases/23.05.5", "x86/64", suffix=".tar.xz")
    ib = ImageBuilderCache(tmp_path / "c", fetcher, 10**9).ensure(
        url, "releases/23.05.5", "x86/64", [KEY.public_key]
    )
    assert (ib / "Makefile").is_file()


def test_new_upstream_build_replaces_the_old_entry(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    make_target(root, "snapshots", "x86/64", payload=b"a" * 100)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9, eviction_grace=0)
    first = cache.ensure(url, "snapshots", "x86/64", [KEY.public_key])
    time.sleep(0.01)
    make_target(root, "snapshots", "x86/64", payload=b"b" * 100)
    second = cache.ensure(url, "snapshots", "x86/64", [KEY.public_key])
    assert first != second
    assert (second / "payload.bin").read_bytes() == b"b" * 100
    assert not first.exists()
    assert [entry.path for entry in cache.entries()] == [second]


def _assert_nothing_cached(cache_root: Path) -> None:
    assert list((cache_root / "entries").iterdir()) == []
    assert list((cache_root / "tmp").iterdir()) == []


def test_tampered_archive_is_refused_and_nothing_cached(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    directory = make_target(root, RELEASE, "x86/64")
    [archive] = directory.glob("*imagebuilder*")
    data = bytearray(archive.read_bytes())
    data[-5] ^= 0xFF
    archive.write_bytes(bytes(data))
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    with pytest.raises(SignatureError, match="sha256"):
        cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    _assert_nothing_cached(tmp_path / "cache")


def test_tampered_listing_or_foreign_signature_is_refused(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    directory = make_target(root, RELEASE, "x86/64")
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    sums = directory / "sha256sums"
    original = sums.read_text()
    sums.write_text(original.replace(original[0], "0" if original[0] != "0" else "1", 1))
    with pytest.raises(SignatureError):
        cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    sums.write_text(original)
    sign_dir(directory, OTHER_KEY)
    with pytest.raises(SignatureError, match="not trusted"):
        cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    _assert_nothing_cached(tmp_path / "cache")
    assert list((tmp_path / "cache" / "sums").glob("*")) == []
    # The right key makes the same listing acceptable.
    assert cache.ensure(url, RELEASE, "x86/64", [KEY.public_key, OTHER_KEY.public_key]).is_dir()


def test_unsafe_archive_is_refused(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    top = "openwrt-imagebuilder-x86-64.Linux-x86_64"
    make_target(root, RELEASE, "x86/64", members=[{"name": f"{top}/../../escape", "data": b"x"}])
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
    with pytest.raises(UnsafeArchive):
        cache.ensure(url, RELEASE, "x86/64", [KEY.public_key])
    _assert_nothing_cached(tmp_path / "cache")
    assert not (tmp_path / "escape").exists()


def test_no_imagebuilder_listed(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    directory = root / RELEASE / "targets" / "x86" / "64"
    directory.mkdir(parents=True)
    (directory / "profiles.json").write_text("{}")
    sign_dir(directory)
    with pytest.raises(UpstreamError, match="no ImageBuilder"):
        ImageBuilderCache(tmp_path / "c", fetcher, 10**9).ensure(url, RELEASE, "x86/64", [KEY.public_key])


def test_lru_eviction_keeps_an_entry_in_use(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    for target in ("a/one", "b/two", "c/three"):
        make_target(root, RELEASE, target, payload=target.encode() * 2000)
    keys = [KEY.public_key]
    # Room for two entries, not three.
    probe = ImageBuilderCache(tmp_path / "probe", fetcher, 10**9)
    one_size = probe.entries()[0].size if probe.ensure(url, RELEASE, "a/one", keys) else 0
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, int(one_size * 2.5), eviction_grace=0)
    with cache.lease(url, RELEASE, "a/one", keys) as one:
        time.sleep(0.01)
        two = cache.ensure(url, RELEASE, "b/two", keys)
        time.sleep(0.01)
        three = cache.ensure(url, RELEASE, "c/three", keys)
        # "one" is the least recently used but in use, so "two" went instead.
        assert one.is_dir() and three.is_dir() and not two.exists()
        assert (one / "payload.bin").read_bytes().startswith(b"a/one")
    # Leaving the lease counts as a use: "three" is now the least recently used.
    time.sleep(0.01)
    two = cache.ensure(url, RELEASE, "b/two", keys)
    assert two.is_dir() and one.is_dir() and not three.exists()
    assert cache.usage_bytes() <= cache.max_bytes


def test_grace_period_protects_a_just_returned_entry(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    for target in ("a/one", "b/two"):
        make_target(root, RELEASE, target)
    cache = ImageBuilderCache(tmp_path / "cache", fetcher, 1, eviction_grace=60)
    one = cache.ensure(url, RELEASE, "a/one", [KEY.public_key])
    two = cache.ensure(url, RELEASE, "b/two", [KEY.public_key])
    assert one.is_dir() and two.is_dir()  # over budget, but both used just now
    assert cache.evict() == []


def test_threads_unpack_once(upstream, tmp_path: Path) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "x86/64", payload=b"z" * 2_000_000)
    barrier = threading.Barrier(4)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        with Fetcher(timeout=10, retries=0) as fetcher:
            cache = ImageBuilderCache(tmp_path / "cache", fetcher, 10**9)
            barrier.wait()
            try:
                results.append(cache.ensure(url, RELEASE, "x86/64", [KEY.public_key]))
            except BaseException as error:  # reported below
                errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(set(results)) == 1 and len(results) == 4
    assert ib_gets(counter) == 1


PROCESS_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sysup.imagebuilders.cache import ImageBuilderCache
    from sysup.upstream.fetch import Fetcher
    from asud.upstream.usign import parse_public_key
    cache_root, url, key, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    time.sleep(max(0.0, start - time.time()))
    with Fetcher(timeout=10, retries=0) as fetcher:
        cache = ImageBuilderCache(Path(cache_root), fetcher, 10**9)
        print(cache.ensure(url, "releases/24.10.4", "x86/64", [parse_public_key(key)]))
""")


def test_processes_unpack_once(upstream, tmp_path: Path) -> None:
    root, url, counter = upstream
    make_target(root, RELEASE, "x86/64", payload=b"p" * 2_000_000)
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PROCESS_SCRIPT,
                str(tmp_path / "cache"),
                url,
                KEY.public_key.to_text(),
                str(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    assert len({out.strip() for out, _ in outputs}) == 1
    assert ib_gets(counter) == 1
