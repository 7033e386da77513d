"""A download server (or a man in the middle) that serves a tampered ImageBuilder tarball, ``sha256sums``,
signature or package index: every variant is refused with ``SignatureError`` and nothing is cached.

Ported from sysup's tests/security/test_tampered_upstream.py (same assertions) onto the asud caches.

A copy of the demo tree's ath79 target and its ``base`` feed, served on 127.0.0.1, is tampered per test; the
real ImageBuilder cache and package cache are pointed at it with the demo tree's signing key.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from asud.build.imagebuilders import ImageBuilderCache
from asud.build.packages import PackageCache
from asud.build.repositories import read_repositories
from asud.errors import SignatureError, UpstreamError
from asud.upstream.fetch import Fetcher
from asud.upstream.usign import parse_public_key
from tests.build.factories import OTHER_KEY, serve, sign_dir
from tests.support.upstream import demo_tree

__all__ = ["demo_tree"]

RELEASE = "releases/24.10.4"
TARGET = "ath79/generic"
FEED = f"{RELEASE}/packages/mips_24kc/base"


@pytest_twisted.async_yield_fixture()
async def fetcher() -> AsyncIterator[Fetcher]:
    made = Fetcher(timeout=10, retries=0)
    yield made
    await made.close()


@pytest.fixture
def mirror(tmp_path: Path, demo_tree: Any) -> Iterator[tuple[Path, str, Any]]:
    """``(root, url, public key)`` of a private copy of one target and one feed of the demo tree."""
    info = demo_tree[0]
    root = tmp_path / "mirror"
    for part in (f"{RELEASE}/targets/{TARGET}", FEED):
        shutil.copytree(Path(info.root) / part, root / part)
    with serve(root) as (url, _counter):
        yield root, url, parse_public_key(info.public_key_text)


def _tarball(root: Path) -> Path:
    return next((root / RELEASE / "targets" / TARGET).glob("openwrt-imagebuilder-*"))


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _tarball_bytes(root: Path) -> None:
    _flip_byte(_tarball(root))


def _sums_follow_tarball(root: Path) -> None:
    """The tarball changed and the listing updated to match it: only the signature can tell."""
    import hashlib

    tarball = _tarball(root)
    old = hashlib.sha256(tarball.read_bytes()).hexdigest()
    _flip_byte(tarball)
    sums = tarball.parent / "sha256sums"
    sums.write_text(sums.read_text().replace(old, hashlib.sha256(tarball.read_bytes()).hexdigest()))


def _foreign_signature(root: Path) -> None:
    _flip_byte(_tarball(root))
    sign_dir(_tarball(root).parent, OTHER_KEY)  # a consistent listing, signed with somebody else's key


def _signature_missing(root: Path) -> None:
    (_tarball(root).parent / "sha256sums.sig").unlink()


@pytest.mark.parametrize(
    "tamper", [_tarball_bytes, _sums_follow_tarball, _foreign_signature, _signature_missing]
)
@pytest_twisted.ensureDeferred
async def test_tampered_imagebuilder_is_refused_and_not_cached(
    mirror: tuple[Path, str, Any], fetcher: Fetcher, tmp_path: Path, tamper: Callable[[Path], None]
) -> None:
    root, url, key = mirror
    tamper(root)
    cache = ImageBuilderCache(tmp_path / "ib", fetcher, 10**10)
    with pytest.raises(UpstreamError) as refused:
        await cache.ensure(url, RELEASE, TARGET, [key])
    assert isinstance(refused.value, SignatureError) or "signature" in refused.value.detail.lower() \
        or "sha256" in refused.value.detail.lower(), refused.value.detail
    assert cache.entries() == []
    assert not any((tmp_path / "ib" / "entries").iterdir())
    assert not [path for path in (tmp_path / "ib" / "tmp").rglob("*") if path.is_file()]


def _index_changed(feed: Path) -> None:
    packages = feed / "Packages"
    evil = "\nPackage: evil\nVersion: 1\nFilename: evil.ipk\nSHA256sum: " + "0" * 64 + "\n"
    text = packages.read_text() + evil
    packages.write_text(text)
    gz = feed / "Packages.gz"
    if gz.exists():
        gz.write_bytes(gzip.compress(text.encode()))


def _index_signed_by_stranger(feed: Path) -> None:
    _index_changed(feed)
    (feed / "Packages.sig").write_text(OTHER_KEY.sign((feed / "Packages").read_bytes()))


def _index_signature_missing(feed: Path) -> None:
    (feed / "Packages.sig").unlink()


@pytest.mark.parametrize("tamper", [_index_changed, _index_signed_by_stranger, _index_signature_missing])
@pytest_twisted.ensureDeferred
async def test_tampered_package_index_is_refused_and_not_cached(
    mirror: tuple[Path, str, Any], fetcher: Fetcher, tmp_path: Path, tamper: Callable[[Path], None]
) -> None:
    root, url, key = mirror
    tamper(root / FEED)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "repositories.conf").write_text(f"src/gz openwrt_base {url}/{FEED}\n")
    cache = PackageCache(tmp_path / "pkg", fetcher)
    with pytest.raises(UpstreamError):
        await cache.prefetch_indexes(read_repositories(workspace), [key])
    cached = [path for path in (tmp_path / "pkg").rglob("*") if path.is_file() and "Packages" in path.name]
    assert cached == []


@pytest_twisted.ensureDeferred
async def test_untampered_mirror_is_accepted(
    mirror: tuple[Path, str, Any], fetcher: Fetcher, tmp_path: Path
) -> None:
    """The control: the same copy, untouched, verifies and caches."""
    _root, url, key = mirror
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "repositories.conf").write_text(f"src/gz openwrt_base {url}/{FEED}\n")
    ib_cache = ImageBuilderCache(tmp_path / "ib", fetcher, 10**10)
    assert (await ib_cache.ensure(url, RELEASE, TARGET, [key])).is_dir()
    assert await PackageCache(tmp_path / "pkg", fetcher).prefetch_indexes(read_repositories(workspace), [key])
