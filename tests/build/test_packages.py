"""Package cache over real HTTP: verified indexes, verified package files, local feeds for the workspace.

Ported from sysup's tests/imagebuilders/test_package_cache.py (same assertions)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted

from asud.build.packages import FEEDS_DIR, PackageCache, add_repositories, read_repositories
from asud.errors import BadRequest, SignatureError
from asud.upstream.fetch import Fetcher
from tests.build.factories import KEY, OTHER_KEY, serve, sign_dir

REL = "releases/24.10.4"


def _stanza(name: str, version: str, data: bytes, abi: str | None = None) -> str:
    filename = f"{name}_{version}_mips_24kc.ipk"
    lines = [f"Package: {name}", f"Version: {version}"]
    if abi:
        lines.append(f"ABIVersion: {abi}")
    lines += [
        f"Filename: {filename}",
        f"Size: {len(data)}",
        f"SHA256sum: {hashlib.sha256(data).hexdigest()}",
        "Description: test",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[tuple[Path, str, object]]:
    root = tmp_path / "up"
    # opkg feed: base with two packages, one ABI-versioned.
    base = root / REL / "packages" / "mips_24kc" / "base"
    base.mkdir(parents=True)
    stanzas = []
    for name, version, abi in (
        ("busybox", "1.36.1-r2", None),
        ("libubox20240329", "2024.03.29-r1", "20240329"),
    ):
        data = f"{name} {version}".encode() * 10
        (base / f"{name}_{version}_mips_24kc.ipk").write_bytes(data)
        stanzas.append(_stanza(name, version, data, abi))
    packages = "\n".join(stanzas)
    (base / "Packages").write_text(packages)
    (base / "Packages.sig").write_text(KEY.sign(packages.encode()))
    # apk feed: packages.adb is trusted through packages/<arch>/sha256sums.
    apk_arch = root / "releases/25.12.1/packages/x86_64"
    (apk_arch / "base").mkdir(parents=True)
    (apk_arch / "base" / "packages.adb").write_bytes(b"SYSUP-DEMO-ADB 1\nopaque\n")
    (apk_arch / "base" / "busybox-1.36.1-r2.apk").write_bytes(b"bb")
    (apk_arch / "base" / "libubox20240329-2024.03.29-r1.apk").write_bytes(b"ubox")
    sign_dir(apk_arch)
    with serve(root) as (url, counter):
        yield root, url, counter


@pytest_twisted.async_yield_fixture()
async def fetcher() -> AsyncIterator[Fetcher]:
    made = Fetcher(timeout=10, retries=0)
    yield made
    await made.close()


def _workspace(tmp_path: Path, name: str, text: str) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    (ws / name).write_text(text)
    return ws


@pytest_twisted.ensureDeferred
async def test_opkg_feed_verified_prefetched_and_rewritten(upstream, fetcher, tmp_path: Path) -> None:
    _, url, counter = upstream
    feed_url = f"{url}/{REL}/packages/mips_24kc/base"
    ws = _workspace(
        tmp_path,
        "repositories.conf",
        f"src/gz openwrt_base {feed_url}\nsrc imagebuilder file:packages\noption check_signature\n",
    )
    cache = PackageCache(tmp_path / "pkg", fetcher)
    repos = read_repositories(ws)
    assert repos.manager == "opkg"
    feeds = await cache.prefetch_indexes(repos, [KEY.public_key])
    assert [feed.name for feed in feeds] == ["00-openwrt_base"]
    pre = await cache.prefetch_packages(
        feeds, {"busybox": "1.36.1-r2", "libubox": "2024.03.29-r1", "kernel": "6.6"}
    )
    assert pre.missing == ["kernel"]
    assert sorted(p.filename for p, _ in pre.files["00-openwrt_base"]) == [
        "busybox_1.36.1-r2_mips_24kc.ipk",
        "libubox20240329_2024.03.29-r1_mips_24kc.ipk",
    ]
    conf = await cache.rewrite_repositories(ws, repos, feeds, pre)
    local = ws / FEEDS_DIR / "00-openwrt_base"
    assert conf.read_text() == (
        f"src openwrt_base file://{local}\nsrc imagebuilder file:packages\noption check_signature\n"
    )
    assert sorted(p.name for p in local.iterdir()) == [
        "Packages",
        "Packages.sig",
        "busybox_1.36.1-r2_mips_24kc.ipk",
        "libubox20240329_2024.03.29-r1_mips_24kc.ipk",
    ]
    blob = cache.blob_path(hashlib.sha256(b"busybox 1.36.1-r2" * 10).hexdigest())
    assert os.stat(local / "busybox_1.36.1-r2_mips_24kc.ipk").st_ino == os.stat(blob).st_ino

    # Warm: one conditional request per index, nothing else.
    before = dict(counter)
    feeds = await cache.prefetch_indexes(repos, [KEY.public_key])
    await cache.prefetch_packages(feeds, {"busybox": "1.36.1-r2"})
    delta = {p: n - before.get(p, 0) for p, n in counter.items() if n != before.get(p, 0)}
    assert delta == {f"/{REL}/packages/mips_24kc/base/Packages": 1}


@pytest_twisted.ensureDeferred
async def test_tampered_index_or_package_is_refused(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    base = root / REL / "packages" / "mips_24kc" / "base"
    ws = _workspace(tmp_path, "repositories.conf", f"src/gz base {url}/{REL}/packages/mips_24kc/base\n")
    cache = PackageCache(tmp_path / "pkg", fetcher)
    repos = read_repositories(ws)
    with pytest.raises(SignatureError, match="not trusted"):
        await cache.prefetch_indexes(repos, [OTHER_KEY.public_key])
    feeds = await cache.prefetch_indexes(repos, [KEY.public_key])
    (base / "busybox_1.36.1-r2_mips_24kc.ipk").write_bytes(b"evil")
    with pytest.raises(SignatureError, match="sha256"):
        await cache.prefetch_packages(feeds, {"busybox": "1.36.1-r2"})
    assert list((tmp_path / "pkg" / "blobs").rglob("*.ipk")) == []
    assert not any(p.is_file() for p in (tmp_path / "pkg" / "blobs").rglob("*"))
    packages = base / "Packages"
    packages.write_text(packages.read_text().replace("busybox", "busyb0x"))
    os.utime(packages, (1, 1))  # a new validator
    with pytest.raises(SignatureError):
        await cache.prefetch_indexes(repos, [KEY.public_key])


@pytest_twisted.ensureDeferred
async def test_apk_feed_trusted_through_parent_listing(upstream, fetcher, tmp_path: Path) -> None:
    _, url, _ = upstream
    adb_url = f"{url}/releases/25.12.1/packages/x86_64/base/packages.adb"
    ws = _workspace(tmp_path, "repositories", f"{adb_url}\npackages/packages.adb\n")
    cache = PackageCache(tmp_path / "pkg", fetcher)
    repos = read_repositories(ws)
    assert repos.manager == "apk"
    [feed] = await cache.prefetch_indexes(repos, [KEY.public_key])
    assert set(feed.files) == {"busybox-1.36.1-r2.apk", "libubox20240329-2024.03.29-r1.apk"}
    pre = await cache.prefetch_packages([feed], {"busybox": "1.36.1-r2", "libubox": "2024.03.29-r1"})
    assert pre.missing == []
    text = (await cache.rewrite_repositories(ws, repos, [feed], pre)).read_text()
    local = ws / FEEDS_DIR / feed.name
    assert text == f"{local / 'packages.adb'}\npackages/packages.adb\n"
    assert (local / "packages.adb").read_bytes().startswith(b"SYSUP-DEMO-ADB")
    assert (local / "libubox20240329-2024.03.29-r1.apk").read_bytes() == b"ubox"


@pytest_twisted.ensureDeferred
async def test_apk_index_not_matching_its_listing_is_refused(upstream, fetcher, tmp_path: Path) -> None:
    root, url, _ = upstream
    (root / "releases/25.12.1/packages/x86_64/base/packages.adb").write_bytes(b"SYSUP-DEMO-ADB 1\nswapped\n")
    ws = _workspace(tmp_path, "repositories", f"{url}/releases/25.12.1/packages/x86_64/base/packages.adb\n")
    cache = PackageCache(tmp_path / "pkg", fetcher)
    with pytest.raises(SignatureError):
        await cache.prefetch_indexes(read_repositories(ws), [KEY.public_key])
    ws2 = _workspace(tmp_path, "repositories", f"{url}/releases/25.12.1/packages/x86_64/other/packages.adb\n")
    with pytest.raises(SignatureError, match="no signed sha256sums"):
        await cache.prefetch_indexes(read_repositories(ws2), [KEY.public_key])


def test_extra_repositories(tmp_path: Path) -> None:
    ws = _workspace(
        tmp_path,
        "repositories.conf",
        "src/gz core http://a/core\nsrc imagebuilder file:packages\noption check_signature\n",
    )
    repos = read_repositories(ws)
    appended = add_repositories(repos, {"custom": "https://repo.example.org/feed/"})
    assert [(e.name, e.url) for e in appended.remote] == [
        ("core", "http://a/core"),
        ("custom", "https://repo.example.org/feed"),
    ]
    replaced = add_repositories(repos, {"custom": "https://repo.example.org/feed"}, mode="replace")
    assert [e.name for e in replaced.remote] == ["custom"]
    assert any(e.url == "file:packages" for e in replaced.entries)
    for name, url in (
        ("bad name", "https://x/y"),
        ("ok", "https://x/$(shell id)"),
        ("ok", "ftp://x/y"),
        ("ok", "https://x/y z"),
    ):
        with pytest.raises(BadRequest):
            add_repositories(repos, {name: url})
    apk_ws = tmp_path / "apk"
    apk_ws.mkdir()
    (apk_ws / "repositories").write_text("http://a/packages.adb\n")
    apk = add_repositories(read_repositories(apk_ws), {"x": "https://repo.example.org/feed"})
    assert apk.remote[-1].url == "https://repo.example.org/feed/packages.adb"


@pytest_twisted.ensureDeferred
async def test_concurrent_builds_share_package_downloads(upstream, fetcher, tmp_path: Path) -> None:
    from twisted.internet.defer import gatherResults

    _, url, counter = upstream
    ws = _workspace(tmp_path, "repositories.conf", f"src/gz base {url}/{REL}/packages/mips_24kc/base\n")
    cache = PackageCache(tmp_path / "pkg", fetcher)
    feeds = await cache.prefetch_indexes(read_repositories(ws), [KEY.public_key])
    manifest = {"busybox": "1.36.1-r2", "libubox": "2024.03.29-r1"}
    results = await gatherResults([cache.prefetch_packages(feeds, manifest) for _ in range(3)])
    assert len({str(path) for result in results for _, path in result.files["00-base"]}) == 2
    for name in ("busybox_1.36.1-r2_mips_24kc.ipk", "libubox20240329_2024.03.29-r1_mips_24kc.ipk"):
        assert counter[f"/{REL}/packages/mips_24kc/base/{name}"] == 1


@pytest_twisted.ensureDeferred
async def test_prune_drops_the_least_recently_used_files_first(fetcher, tmp_path: Path) -> None:
    cache = PackageCache(tmp_path / "pkg", fetcher)
    ages = {"old": 10_000, "older": 20_000, "fresh": 0}
    for name, age in ages.items():
        blob = cache.blob_path(hashlib.sha256(name.encode()).hexdigest())
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(b"x" * 100)
        then = os.stat(blob).st_mtime - age
        os.utime(blob, (then, then))
    assert await cache.prune(150) == 200  # "older", then "old"; never the file used within the hour
    left = [path for path in (tmp_path / "pkg" / "blobs").rglob("*") if path.is_file()]
    assert [path.name for path in left] == [hashlib.sha256(b"fresh").hexdigest()]
    assert await cache.prune(0) == 0
