"""The ImageBuilder cache: download, verify and unpack each ImageBuilder once; evict the least recently used.

Layout under ``root`` (``config.imagebuilder_dir``)::

    entries/<sha256>/        an unpacked ImageBuilder (files read-only), named by its archive's sha256
    entries/<sha256>.json    {"name", "source", "size"}; its mtime is the entry's last use
    locks/<sha256>.unpack    exclusive while one daemon downloads and unpacks that archive
    locks/<sha256>.use       shared by every user of the entry; the evictor needs it exclusively
    locks/evict              one evictor at a time
    sums/                    verified ``sha256sums`` of target directories (see ``signed_sums``)
    tmp/                     downloads and unpacks in progress (renamed into ``entries/`` when complete)

Entries are keyed by the archive's sha256, so a new upstream build of the same target is a new entry; the
old one is dropped as soon as nobody uses it. Nothing reaches ``entries/`` unless the listing's usign
signature and the archive's sha256 both verified and the archive unpacked safely (a child ``tar``, see
``asud.build.unpack``).

Inside one daemon, concurrent builds that need the same ImageBuilder share one download and unpack (one
Deferred per archive key). Between daemons sharing the disk, ``flock``s (``asud.build.locks``, taken
without blocking the reactor) keep an archive from being unpacked twice and an entry in use from being
evicted.

Use :meth:`ImageBuilderCache.lease` around workspace creation (and the build, if you like)::

    lease = yield cache.lease(upstream, "releases/24.10.4", "ath79/generic", keys)
    with lease:
        workspace = yield make_workspace(lease.path, workspaces_root)

``ensure()`` returns the path without holding it; a just-used entry is still safe for ``eviction_grace``
seconds, which covers a caller that makes its workspace right after.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import attrs
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from asud.build.locks import FileLock, follow
from asud.build.signed_sums import SignedSums
from asud.build.unpack import unpack_archive
from asud.build.workspace import Workspace
from asud.errors import UpstreamError
from asud.upstream.fetch import Fetcher
from asud.upstream.sha256sums import find_imagebuilder
from asud.upstream.usign import PublicKey

__all__ = ["CacheEntry", "ImageBuilderCache", "Lease", "Progress", "target_dir_url"]

log = Logger()
_T = TypeVar("_T")

#: ``progress(bytes_done, bytes_total_or_None)`` while the archive downloads.
Progress = Callable[[int, int | None], None]
#: ``stage("download")`` / ``stage("unpack")`` when a cold entry is being made.
StageCallback = Callable[[str], None]

#: Seconds after its last use during which an entry is not evicted even when nobody holds it.
DEFAULT_EVICTION_GRACE = 60.0


def target_dir_url(upstream_url: str, path: str, target: str) -> str:
    """``{upstream}/{path}/targets/{target}/`` — where a target's ImageBuilder and ``sha256sums`` live."""
    return f"{upstream_url.rstrip('/')}/{path.strip('/')}/targets/{target.strip('/')}/"


@attrs.frozen
class CacheEntry:
    sha256: str
    name: str
    source: str
    size: int
    last_used: float
    path: Path


class Lease:
    """An entry held in use: it cannot be evicted until :meth:`release` (or the end of a ``with``)."""

    def __init__(self, cache: ImageBuilderCache, sha256: str, use: FileLock) -> None:
        self.sha256 = sha256
        self.path = cache.entries_dir / sha256
        self._cache = cache
        self._use = use

    def release(self) -> None:
        """Leaving counts as a use (the entry becomes the most recently used); safe to call twice."""
        if self._use.held:
            self._cache._touch(self.sha256)
            self._use.release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class ImageBuilderCache:
    """See the module docstring. ``max_bytes`` bounds the unpacked entries (a soft bound: entries in use
    or used within ``eviction_grace`` seconds stay even when over it)."""

    def __init__(
        self,
        root: Path,
        fetcher: Fetcher,
        max_bytes: int,
        *,
        eviction_grace: float = DEFAULT_EVICTION_GRACE,
        reactor: Any = None,
        unpack_timeout: float = 600.0,
        kill_grace: float = 5.0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor
        self.root = root
        self.fetcher = fetcher
        self.max_bytes = max_bytes
        self.eviction_grace = eviction_grace
        self.unpack_timeout = unpack_timeout
        self.kill_grace = kill_grace
        self.entries_dir = root / "entries"
        self.locks_dir = root / "locks"
        self.tmp_dir = root / "tmp"
        self.sums = SignedSums(root / "sums", fetcher)
        #: archive sha256 → the one download-and-unpack in progress in this daemon
        self._installs: dict[str, Deferred[None]] = {}
        for directory in (self.entries_dir, self.locks_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)

    # -- public API -------------------------------------------------------------------------------

    def ensure(
        self,
        upstream_url: str,
        path: str,
        target: str,
        public_keys: Sequence[PublicKey],
        progress: Progress | None = None,
        *,
        stage: StageCallback | None = None,
    ) -> Deferred[Path]:
        """The unpacked ImageBuilder of ``target`` at ``{upstream_url}/{path}``, fetched if needed.

        ``path`` is ``"releases/24.10.4"`` or ``"snapshots"``. Fails with ``SignatureError`` for a listing
        or archive that does not verify, ``UnsafeArchive`` for a dangerous archive, ``UpstreamError`` when
        no ImageBuilder is listed or the download fails.
        """

        def release(lease: Lease) -> Path:
            lease.release()
            return lease.path

        return self.lease(upstream_url, path, target, public_keys, progress, stage=stage).addCallback(release)

    def lease(
        self,
        upstream_url: str,
        path: str,
        target: str,
        public_keys: Sequence[PublicKey],
        progress: Progress | None = None,
        *,
        stage: StageCallback | None = None,
    ) -> Deferred[Lease]:
        """Like ``ensure``, and the entry cannot be evicted until the lease is released."""
        return Deferred.fromCoroutine(self._lease(upstream_url, path, target, public_keys, progress, stage))

    async def _lease(self, upstream_url: str, path: str, target: str, public_keys: Sequence[PublicKey],
                     progress: Progress | None, stage: StageCallback | None) -> Lease:
        dir_url = target_dir_url(upstream_url, path, target)
        sums = await self.sums.get(dir_url, public_keys)
        found = find_imagebuilder(sums)
        if found is None:
            raise UpstreamError(f"{dir_url}: sha256sums lists no ImageBuilder archive")
        name, sha256 = found
        entry_dir = self.entries_dir / sha256
        for _ in range(3):
            use = self._use_lock(sha256)
            await use.acquire(shared=True)
            if entry_dir.is_dir():
                self._touch(sha256)
                return Lease(self, sha256, use)
            use.release()
            shared = self._installs.get(sha256)
            if shared is None:
                shared = Deferred.fromCoroutine(self._make(dir_url, name, sha256, progress, stage))
                self._installs[sha256] = shared
                shared.addBoth(self._installed, sha256)
            await follow(shared)
        raise UpstreamError(f"{dir_url}{name}: the cached ImageBuilder keeps disappearing")

    def entries(self) -> list[CacheEntry]:
        """Every complete entry, least recently used first."""
        found = []
        for meta_path in self.entries_dir.glob("*.json"):
            sha256 = meta_path.stem
            entry_dir = self.entries_dir / sha256
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                last_used = meta_path.stat().st_mtime
            except (OSError, ValueError):
                continue
            if entry_dir.is_dir():
                found.append(CacheEntry(sha256, meta.get("name", ""), meta.get("source", ""),
                                        int(meta.get("size", 0)), last_used, entry_dir))
        return sorted(found, key=lambda entry: entry.last_used)

    def usage_bytes(self) -> int:
        return sum(entry.size for entry in self.entries())

    def evict(self, *, protect: frozenset[str] = frozenset()) -> Deferred[list[str]]:
        """Remove least recently used entries until the cache fits ``max_bytes``; fires with removed keys.

        Entries held by a lease (or being made), in ``protect``, or used within ``eviction_grace``
        seconds are skipped.
        """
        return Deferred.fromCoroutine(self._evict(protect))

    def close(self) -> Deferred[None]:
        """Stop every download or unpack in progress (their partial files are removed); fires when done."""
        installs = list(self._installs.values())
        waiters = [follow(install) for install in installs]
        for install in installs:
            install.cancel()
        return DeferredList(waiters, consumeErrors=True).addCallback(lambda _: None)

    # -- internals ----------------------------------------------------------------------------------

    def _in_thread(self, function: Callable[..., _T], *args: Any) -> Deferred[_T]:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), function, *args)

    def _use_lock(self, sha256: str) -> FileLock:
        return FileLock(self.locks_dir / f"{sha256}.use", reactor=self.reactor)

    def _touch(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.entries_dir / f"{sha256}.json")

    def _installed(self, result: Any, sha256: str) -> Any:
        self._installs.pop(sha256, None)
        return result

    async def _make(self, dir_url: str, name: str, sha256: str, progress: Progress | None,
                    stage: StageCallback | None) -> None:
        """Make the entry for ``sha256`` unless another daemon did; then drop older and evict."""
        unpack = FileLock(self.locks_dir / f"{sha256}.unpack", reactor=self.reactor)
        await unpack.acquire()
        # Held shared before the entry appears, so no evictor can take it between unpack and use.
        use = self._use_lock(sha256)
        try:
            try:
                await use.acquire(shared=True)
                if not (self.entries_dir / sha256).is_dir():
                    await self._install(dir_url, name, sha256, progress, stage)
            finally:
                unpack.release()
            await self._replace_older(dir_url, sha256)
            await self._evict(frozenset({sha256}))
        finally:
            use.release()

    async def _install(self, dir_url: str, name: str, sha256: str, progress: Progress | None,
                       stage: StageCallback | None) -> None:
        """Download, verify and unpack into ``tmp/``, then rename into ``entries/`` (only if all went well).

        Called with the entry's unpack lock held, so leftovers of a crashed earlier attempt for the same
        key can be removed safely.
        """
        for stale in self.tmp_dir.glob(f"{sha256}.*"):
            await self._in_thread(_remove_tree, stale)
        work = self.tmp_dir / f"{sha256}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        work.mkdir()
        try:
            archive = work / name
            if stage:
                stage("download")
            log.info("downloading ImageBuilder {url}", url=f"{dir_url}{name}")
            await self.fetcher.download(f"{dir_url}{name}", archive, expected_sha256=sha256,
                                        progress=progress)
            if stage:
                stage("unpack")
            tree = work / "tree"
            tree.mkdir()
            size = await unpack_archive(archive, tree, reactor=self.reactor, timeout=self.unpack_timeout,
                                        kill_grace=self.kill_grace)
            archive.unlink()
            meta = {"name": name, "source": dir_url, "size": size}
            (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(work / "meta.json", self.entries_dir / f"{sha256}.json")
            os.rename(tree, self.entries_dir / sha256)
            log.info("cached ImageBuilder {name} ({size} bytes unpacked)", name=name, size=size)
        finally:
            await self._in_thread(_remove_tree, work)

    async def _replace_older(self, dir_url: str, sha256: str) -> None:
        """Drop other entries of the same target directory: a new upstream build replaces the old one."""
        for entry in self.entries():
            if entry.source == dir_url and entry.sha256 != sha256 and await self._remove(entry.sha256):
                log.info("dropped superseded ImageBuilder {name} ({sha256})", name=entry.name,
                         sha256=entry.sha256)

    async def _evict(self, protect: frozenset[str]) -> list[str]:
        removed: list[str] = []
        lock = FileLock(self.locks_dir / "evict", reactor=self.reactor)
        await lock.acquire()
        try:
            entries = self.entries()
            total = sum(entry.size for entry in entries)
            now = time.time()
            for entry in entries:
                if total <= self.max_bytes:
                    break
                if entry.sha256 in protect or now - entry.last_used < self.eviction_grace:
                    continue
                if await self._remove(entry.sha256):
                    removed.append(entry.sha256)
                    total -= entry.size
        finally:
            lock.release()
        for sha256 in removed:
            log.info("evicted ImageBuilder {sha256} from the cache", sha256=sha256)
        return removed

    async def _remove(self, sha256: str) -> bool:
        """Remove one entry unless somebody uses it; ``True`` when it is gone."""
        use = self._use_lock(sha256)
        if not use.try_acquire():
            return False
        trash = self.tmp_dir / f"trash-{sha256}.{uuid.uuid4().hex[:8]}"
        try:
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.entries_dir / sha256, trash)
            (self.entries_dir / f"{sha256}.json").unlink(missing_ok=True)
        finally:
            use.release()
        await self._in_thread(_remove_tree, trash)
        return True


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        Workspace(path).cleanup()  # copes with read-only directories
    else:
        path.unlink(missing_ok=True)
