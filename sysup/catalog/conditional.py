"""Conditional GETs against the download server, remembering validators in ``upstream_files``.

Every URL is requested with the ETag/Last-Modified stored from the last successful sync, so a re-sync
with nothing changed costs one 304 per file. The new validators are *not* written here: the caller
stores them (``pending``) in the same transaction as the data derived from the file, so a file whose
processing failed is fetched again in full next time.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from asud.upstream.errors import UpstreamNotFound
from sysup.catalog.models import UpstreamFile


class FetchResultLike(Protocol):
    status: int
    content: bytes | None
    etag: str | None
    last_modified: str | None
    not_modified: bool


class FetcherLike(Protocol):
    """What ``sysup.upstream.fetch.Fetcher`` offers; raises ``UpstreamNotFound`` for a missing file."""

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResultLike: ...


@dataclass(frozen=True, slots=True)
class FileState:
    """What ``upstream_files`` holds for one URL."""

    url: str
    etag: str | None
    last_modified: str | None
    sha256: str
    size: int
    content: bytes | None = None


@dataclass(slots=True)
class Fetched:
    """A file as this sync sees it. ``changed`` is false when the server said 304 or sent the same
    bytes as last time; ``content`` is ``None`` only for an unchanged file whose bytes are not kept."""

    url: str
    content: bytes | None
    sha256: str
    changed: bool
    pending: FileState | None = None


@dataclass
class TransferCounters:
    """Request statistics, shared by every fetch of one sync (thread-safe)."""

    requests: int = 0
    not_modified: int = 0
    not_found: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, not_modified: bool = False, not_found: bool = False, size: int = 0) -> None:
        with self._lock:
            self.requests += 1
            self.not_modified += int(not_modified)
            self.not_found += int(not_found)
            self.bytes += size


class ConditionalFetcher:
    """Fetches below ``prefix`` with the validators stored for each URL."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        fetcher: FetcherLike,
        prefix: str,
        counters: TransferCounters,
    ) -> None:
        self.fetcher = fetcher
        self.counters = counters
        with session_factory() as session:
            rows = session.scalars(select(UpstreamFile).where(UpstreamFile.url.startswith(prefix)))
            self.known: dict[str, FileState] = {
                row.url: FileState(row.url, row.etag, row.last_modified, row.sha256, row.size, row.content)
                for row in rows
            }

    def get(self, url: str, *, keep: bool = False, force: bool = False) -> Fetched:
        """The file at ``url``. ``keep`` stores its bytes so a later 304 can still return them (for the
        small files a sync must re-read: version lists, sha256sums, signatures); ``force`` ignores the
        stored validators. Raises ``UpstreamNotFound`` when the file is absent."""
        known = None if force else self.known.get(url)
        if keep and known is not None and known.content is None:
            known = None
        try:
            result = self.fetcher.fetch(
                url,
                etag=known.etag if known else None,
                last_modified=known.last_modified if known else None,
            )
        except UpstreamNotFound:
            self.counters.add(not_found=True)
            raise
        if result.not_modified and known is not None:
            self.counters.add(not_modified=True, size=0)
            return Fetched(url, known.content, known.sha256, changed=False)
        content = result.content or b""
        self.counters.add(not_modified=False, size=len(content))
        digest = hashlib.sha256(content).hexdigest()
        previous = self.known.get(url)
        pending = FileState(
            url, result.etag, result.last_modified, digest, len(content), content if keep else None
        )
        if previous is not None and previous == pending:
            pending = None
        changed = previous is None or previous.sha256 != digest or force
        return Fetched(url, content, digest, changed=changed, pending=pending)


def store_file_states(session: Session, states: list[FileState]) -> None:
    """Upsert validators (inside the caller's transaction)."""
    if not states:
        return
    by_url = {state.url: state for state in states}
    existing = {
        row.url: row for row in session.scalars(select(UpstreamFile).where(UpstreamFile.url.in_(by_url)))
    }
    now = datetime.now(UTC)
    for url, state in by_url.items():
        row = existing.get(url)
        if row is None:
            row = UpstreamFile(url=url)
            session.add(row)
        row.etag = state.etag
        row.last_modified = state.last_modified
        row.sha256 = state.sha256
        row.size = state.size
        row.content = state.content
        row.fetched_at = now
