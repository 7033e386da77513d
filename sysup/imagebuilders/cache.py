"""The ImageBuilder cache: download, verify and unpack each ImageBuilder once; evict the least recently used.

Layout under ``root``::

    entries/<sha256>/        an unpacked ImageBuilder (files read-only), named by its archive's sha256
    entries/<sha256>.json    {"name", "source", "size"}; its mtime is the entry's last use
    locks/<sha256>.unpack    exclusive while one worker downloads and unpacks that archive
    locks/<sha256>.use       shared by every user of the entry; the evictor needs it exclusively
    locks/evict              one evictor at a time
    sums/                    verified ``sha256sums`` of target directories (see ``signed_sums``)
    tmp/                     downloads and unpacks in progress (renamed into ``entries/`` when complete)

Entries are keyed by the archive's sha256, so a new upstream build of the same target is a new entry; the
old one is dropped as soon as nobody uses it. All locks are ``flock``s, so threads and processes (several
``sysup worker``s on one data directory) cooperate: an archive is never unpacked twice, and an entry in
use is never evicted. Nothing reaches ``entries/`` unless the listing's signature and the archive's sha256
both verified and the archive unpacked safely.

Use ``lease()`` around workspace creation (and the build, if you like)::

    with cache.lease(upstream, "releases/24.10.4", "ath79/generic", keys) as ib_dir:
        workspace = make_workspace(ib_dir, workspaces_root)

``ensure()`` returns the path without holding it; a just-used entry is still safe for ``eviction_grace``
seconds, which covers a caller that makes its workspace right after.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from asud.errors import UpstreamError
from asud.upstream.sha256sums import find_imagebuilder
from asud.upstream.usign import PublicKey
from sysup.imagebuilders.locks import FileLock
from sysup.imagebuilders.signed_sums import SignedSums
from sysup.imagebuilders.unpack import tree_size, unpack_archive
from sysup.imagebuilders.workspace import Workspace
from sysup.upstream.fetch import Fetcher

__all__ = ["CacheEntry", "ImageBuilderCache", "Progress", "target_dir_url"]

log = logging.getLogger(__name__)

#: ``progress(bytes_done, bytes_total_or_None)`` while the archive downloads.
Progress = Callable[[int, int | None], None]
#: ``stage("download")`` / ``stage("unpack")`` when a cold entry is being made.
StageCallback = Callable[[str], None]

#: Seconds after its last use during which an entry is not evicted even when nobody holds it.
DEFAULT_EVICTION_GRACE = 60.0


def target_dir_url(upstream_url: str, path: str, target: str) -> str:
    """``{upstream}/{path}/targets/{target}/`` — where a target's ImageBuilder and ``sha256sums`` live."""
    return f"{upstream_url.rstrip('/')}/{path.strip('/')}/targets/{target.strip('/')}/"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    sha256: str
    name: str
    source: str
    size: int
    last_used: float
    path: Path


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
    ) -> None:
        self.root = root
        self.fetcher = fetcher
        self.max_bytes = max_bytes
        self.eviction_grace = eviction_grace
        self.entries_dir = root / "entries"
        self.locks_dir = root / "locks"
        self.tmp_dir = root / "tmp"
        self.sums = SignedSums(root / "sums", fetcher)
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
    ) -> Path:
        """The unpacked ImageBuilder of ``target`` at ``{upstream_url}/{path}``, fetched if needed.

        ``path`` is ``"releases/24.10.4"`` or ``"snapshots"``. Raises ``SignatureError`` for a listing or
        archive that does not verify, ``UnsafeArchive`` for a dangerous archive, ``UpstreamError`` when
        no ImageBuilder is listed or the download fails.
        """
        with self.lease(upstream_url, path, target, public_keys, progress, stage=stage) as ib_dir:
            return ib_dir

    @contextlib.contextmanager
    def lease(
        self,
        upstream_url: str,
        path: str,
        target: str,
        public_keys: Sequence[PublicKey],
        progress: Progress | None = None,
        *,
        stage: StageCallback | None = None,
    ) -> Iterator[Path]:
        """Like ``ensure``, and the entry cannot be evicted until the ``with`` block ends."""
        dir_url = target_dir_url(upstream_url, path, target)
        sums = self.sums.get(dir_url, public_keys)
        found = find_imagebuilder(sums)
        if found is None:
            raise UpstreamError(f"{dir_url}: sha256sums lists no ImageBuilder archive")
        name, sha256 = found
        use = self._acquire(dir_url, name, sha256, progress, stage)
        try:
            yield self.entries_dir / sha256
        finally:
            self._touch(sha256)
            use.release()

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
                found.append(
                    CacheEntry(
                        sha256,
                        meta.get("name", ""),
                        meta.get("source", ""),
                        int(meta.get("size", 0)),
                        last_used,
                        entry_dir,
                    )
                )
        return sorted(found, key=lambda entry: entry.last_used)

    def usage_bytes(self) -> int:
        return sum(entry.size for entry in self.entries())

    def evict(self, *, protect: frozenset[str] = frozenset()) -> list[str]:
        """Remove least recently used entries until the cache fits ``max_bytes``; returns removed keys.

        Entries held by a ``lease`` (or being made), in ``protect``, or used within ``eviction_grace``
        seconds are skipped.
        """
        removed: list[str] = []
        with FileLock(self.locks_dir / "evict"):
            entries = self.entries()
            total = sum(entry.size for entry in entries)
            now = time.time()
            for entry in entries:
                if total <= self.max_bytes:
                    break
                if entry.sha256 in protect or now - entry.last_used < self.eviction_grace:
                    continue
                if self._remove(entry.sha256):
                    removed.append(entry.sha256)
                    total -= entry.size
        for sha256 in removed:
            log.info("evicted ImageBuilder %s from the cache", sha256)
        return removed

    # -- internals ----------------------------------------------------------------------------------

    def _use_lock(self, sha256: str) -> FileLock:
        return FileLock(self.locks_dir / f"{sha256}.use")

    def _touch(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.entries_dir / f"{sha256}.json")

    def _acquire(
        self, dir_url: str, name: str, sha256: str, progress: Progress | None, stage: StageCallback | None
    ) -> FileLock:
        """A held shared use-lock on a complete entry for ``sha256``, making the entry if needed."""
        entry_dir = self.entries_dir / sha256
        use = self._use_lock(sha256)
        use.acquire(shared=True)
        if entry_dir.is_dir():
            self._touch(sha256)
            return use
        use.release()
        with FileLock(self.locks_dir / f"{sha256}.unpack"):
            # Held shared before the entry appears, so no evictor can take it between unpack and use.
            use.acquire(shared=True)
            try:
                if not entry_dir.is_dir():
                    self._install(dir_url, name, sha256, progress, stage)
            except BaseException:
                use.release()
                raise
        self._replace_older(dir_url, sha256)
        self.evict(protect=frozenset({sha256}))
        return use

    def _install(
        self, dir_url: str, name: str, sha256: str, progress: Progress | None, stage: StageCallback | None
    ) -> None:
        """Download, verify and unpack into ``tmp/``, then rename into ``entries/`` (only if all went well).

        Called with the entry's unpack lock held, so leftovers of a crashed earlier attempt for the same
        key can be removed safely.
        """
        for stale in self.tmp_dir.glob(f"{sha256}.*"):
            _remove_tree(stale)
        work = self.tmp_dir / f"{sha256}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        work.mkdir()
        try:
            archive = work / name
            if stage:
                stage("download")
            log.info("downloading ImageBuilder %s%s", dir_url, name)
            self.fetcher.fetch_to_file(f"{dir_url}{name}", archive, progress=progress, expected_sha256=sha256)
            if stage:
                stage("unpack")
            tree = work / "tree"
            tree.mkdir()
            unpack_archive(archive, tree)
            archive.unlink()
            size = tree_size(tree)
            meta = {"name": name, "source": dir_url, "size": size}
            meta_path = self.entries_dir / f"{sha256}.json"
            (work / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(work / "meta.json", meta_path)
            os.rename(tree, self.entries_dir / sha256)
            log.info("cached ImageBuilder %s (%d bytes unpacked)", name, size)
        finally:
            _remove_tree(work)

    def _replace_older(self, dir_url: str, sha256: str) -> None:
        """Drop other entries of the same target directory: a new upstream build replaces the old one."""
        for entry in self.entries():
            if entry.source == dir_url and entry.sha256 != sha256 and self._remove(entry.sha256):
                log.info("dropped superseded ImageBuilder %s (%s)", entry.name, entry.sha256)

    def _remove(self, sha256: str) -> bool:
        """Remove one entry unless somebody uses it; ``True`` when it is gone."""
        use = self._use_lock(sha256)
        if not use.acquire(blocking=False):
            return False
        try:
            entry_dir = self.entries_dir / sha256
            trash = self.tmp_dir / f"trash-{sha256}.{uuid.uuid4().hex[:8]}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(entry_dir, trash)
            (self.entries_dir / f"{sha256}.json").unlink(missing_ok=True)
        finally:
            use.release()
        _remove_tree(trash)
        return True


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        Workspace(path).cleanup()  # copes with read-only directories
    else:
        path.unlink(missing_ok=True)
