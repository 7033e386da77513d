"""The on-disk cache behind ``Fetcher.fetch_bytes``: the last body of a URL and the validators it came with.

A daemon that restarts asks the download server "has this changed since ETag X?" for every file of its
catalog instead of downloading it again; a 304 answer is served from here. The cache holds bytes only:
callers verify signatures and checksums of what it returns exactly as they do for fresh downloads.
A URL the server answered 404 is remembered as absent, so that while the server cannot be reached an
optional file (a feed that is not built) still reads as absent rather than as an outage.

Layout: ``<dir>/<hh>/<sha256 of the URL>`` (the body) and ``….json`` (URL, ETag, Last-Modified, sha256 and
size of the body). Both are written to a temporary file and renamed, so a crash leaves the old entry or
the new one. An entry whose body does not match its recorded sha256 is treated as absent.

The cache is bounded by :meth:`EtagCache.prune` (housekeeping, ``[cache] upstream_max_bytes``): entries
written longest ago go first, except those the caller still uses (a URL the daemon has asked for since
it started keeps its entry, however old: a release's ``profiles.json`` may keep its ETag for years).

Every method does file I/O and is meant to run in a thread (``deferToThread``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Container
from pathlib import Path

import attrs

__all__ = ["CacheEntry", "EtagCache", "entry_key"]

#: A temporary file older than this is left from a crash mid-write (a write takes milliseconds).
STALE_PART_SECONDS = 3600.0


@attrs.frozen
class CacheEntry:
    """A cached body with the validators the server sent along."""

    url: str
    body: bytes = attrs.field(repr=False)
    etag: str | None
    last_modified: str | None
    #: The server said 404 (``body`` is empty, there are no validators).
    absent: bool = False


def entry_key(url: str) -> str:
    """The name of ``url``'s entry (the sha256 of the URL)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


class EtagCache:
    """Bodies and validators by URL below ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = entry_key(url)
        folder = self.directory / key[:2]
        return folder / key, folder / f"{key}.json"

    def get(self, url: str) -> CacheEntry | None:
        """The entry of ``url``, or ``None`` when there is none (or it is damaged)."""
        body_path, meta_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = b"" if meta.get("absent") is True else body_path.read_bytes()
        except (OSError, ValueError, AttributeError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        if meta.get("absent") is True:
            return CacheEntry(url, b"", None, None, absent=True)
        if meta.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        return CacheEntry(url, body, meta.get("etag") or None, meta.get("last_modified") or None)

    def put(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> None:
        """Remember ``body``; without a validator there is nothing to ask the server later, so the
        entry is dropped instead."""
        if not etag and not last_modified:
            self.delete(url)
            return
        body_path, meta_path = self._paths(url)
        body_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "url": url,
            "etag": etag,
            "last_modified": last_modified,
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
        }
        # Body first: a meta file never names a body that is not there yet.
        _write_atomically(body_path, body)
        _write_atomically(meta_path, json.dumps(meta, sort_keys=True).encode("utf-8"))

    def put_absent(self, url: str) -> None:
        """Remember that the server answered 404 for ``url``."""
        body_path, meta_path = self._paths(url)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(meta_path, json.dumps({"url": url, "absent": True}).encode("utf-8"))
        with contextlib.suppress(FileNotFoundError):
            body_path.unlink()

    def delete(self, url: str) -> None:
        """Forget ``url``."""
        for path in self._paths(url)[::-1]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def prune(self, max_bytes: int, keep: Container[str] = frozenset()) -> list[str]:
        """Remove the entries written longest ago until the cache holds at most ``max_bytes`` (bodies and
        their ``.json``), never one whose key (:func:`entry_key`) is in ``keep``; temporary files a crash
        left behind go too. Returns the keys removed."""
        now = time.time()
        entries: dict[str, list[tuple[Path, os.stat_result]]] = {}
        try:
            folders = [folder for folder in self.directory.iterdir() if folder.is_dir()]
        except FileNotFoundError:
            return []
        for folder in folders:
            for path in folder.iterdir():
                try:
                    status = path.lstat()
                except FileNotFoundError:
                    continue
                if path.name.startswith("."):
                    if path.name.endswith(".part") and now - status.st_mtime > STALE_PART_SECONDS:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                    continue
                entries.setdefault(path.name.removesuffix(".json"), []).append((path, status))
        total = sum(status.st_size for files in entries.values() for _, status in files)
        if total <= max_bytes:
            return []
        candidates = sorted(
            (max(status.st_mtime for _, status in files), key)
            for key, files in entries.items() if key not in keep
        )
        removed: list[str] = []
        for _, key in candidates:
            if total <= max_bytes:
                break
            for path, status in sorted(entries[key], key=lambda item: not item[0].name.endswith(".json")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # the meta first: a body without its meta is never read
                total -= status.st_size
            removed.append(key)
        return removed
