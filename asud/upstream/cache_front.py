"""The reactor's side of the on-disk ETag cache: entries seen lately answered from memory, writes done behind.

A catalog refresh asks for ~560 files that have not changed; every 304 needs the cached body, and a thread
hop to read it from disk cost more than the request itself. A cold start writes ~1,600 entries, each a few
milliseconds of file-system work (two files created and renamed), and waiting for each write held back
that target's next request. So small entries stay in memory (bounded, least recently used out first), and
writes go to one thread at a time, in batches, the latest write of a URL winning. ``flush()`` waits for
them (``Fetcher.close`` does, so a stopping daemon leaves a complete cache). A crash loses at most the
writes not yet made: the cache only saves requests, and the next start asks again.
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.upstream.etag_cache import CacheEntry, EtagCache

__all__ = ["CacheFront"]

log = Logger()

#: A pending write: the entry to store, or ``None`` to forget the URL (an answer without validators).
_Write = CacheEntry | None


class CacheFront:
    """``EtagCache`` for the reactor: ``get`` from memory or a thread, ``put`` now and written behind."""

    def __init__(self, disk: EtagCache, *, max_bytes: int = 32 * 1024**2, max_entry: int = 1024**2) -> None:
        self.disk = disk
        self.max_bytes = max_bytes
        self.max_entry = max_entry
        self._memory: OrderedDict[str, CacheEntry] = OrderedDict()
        self._memory_bytes = 0
        self._pending: dict[str, _Write] = {}
        self._writing: dict[str, _Write] = {}
        self._flushed: list[Deferred[None]] = []

    # -- reads -------------------------------------------------------------------------------------

    def get(self, url: str) -> Deferred[CacheEntry | None]:
        """The entry of ``url``: a write not yet made, memory, else the disk (in a thread)."""
        for writes in (self._pending, self._writing):
            if url in writes:
                return succeed(writes[url])
        entry = self._memory.get(url)
        if entry is not None:
            self._memory.move_to_end(url)
            return succeed(entry)
        return deferToThread(self.disk.get, url).addCallback(self._read)

    def _read(self, entry: CacheEntry | None) -> CacheEntry | None:
        # A put made while the thread read is newer than what the disk had: it wins.
        if entry is not None and not any(
            entry.url in known for known in (self._memory, self._pending, self._writing)
        ):
            self._remember(entry)
        return entry

    # -- writes ------------------------------------------------------------------------------------

    def put(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> None:
        """Remember ``body`` (without a validator there is nothing to ask later: the URL is forgotten)."""
        if not etag and not last_modified:
            self._forget(url)
            self._write(url, None)
            return
        entry = CacheEntry(url, body, etag, last_modified)
        self._remember(entry)
        self._write(url, entry)

    def put_absent(self, url: str) -> None:
        """Remember that the server answered 404 for ``url``."""
        entry = CacheEntry(url, b"", None, None, absent=True)
        self._remember(entry)
        self._write(url, entry)

    def flush(self) -> Deferred[None]:
        """Fires once every write asked for so far is on disk (or has failed and been logged)."""
        if not self._pending and not self._writing:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._flushed.append(waiter)
        return waiter

    def _write(self, url: str, entry: _Write) -> None:
        self._pending[url] = entry
        self._start()

    def _start(self) -> None:
        if self._writing or not self._pending:
            return
        self._writing, self._pending = self._pending, {}
        deferToThread(self._store, self._writing).addCallbacks(self._stored, self._crashed)

    def _store(self, batch: dict[str, _Write]) -> list[tuple[str, OSError]]:
        """In the thread: every write of the batch, in order; what failed (a full disk, say)."""
        failures = []
        for url, entry in batch.items():
            try:
                if entry is None:
                    self.disk.delete(url)
                elif entry.absent:
                    self.disk.put_absent(url)
                else:
                    self.disk.put(url, entry.body, entry.etag, entry.last_modified)
            except OSError as error:
                failures.append((url, error))
        return failures

    def _stored(self, failures: list[tuple[str, OSError]]) -> None:
        for url, error in failures:
            # A failed write costs the next conditional request of that URL, nothing else.
            log.warn("cannot cache {url}: {error}", url=url, error=error)
        self._done()

    def _crashed(self, failure: Failure) -> None:
        log.failure("writing the upstream cache failed", failure)
        self._done()

    def _done(self) -> None:
        self._writing = {}
        self._start()
        if not self._writing:
            waiters, self._flushed = self._flushed, []
            for waiter in waiters:
                waiter.callback(None)

    # -- memory ------------------------------------------------------------------------------------

    def _remember(self, entry: CacheEntry) -> None:
        self._forget(entry.url)
        size = len(entry.body)
        if size > self.max_entry:
            return
        self._memory[entry.url] = entry
        self._memory_bytes += size
        while self._memory_bytes > self.max_bytes:
            _, oldest = self._memory.popitem(last=False)
            self._memory_bytes -= len(oldest.body)

    def _forget(self, url: str) -> None:
        old = self._memory.pop(url, None)
        if old is not None:
            self._memory_bytes -= len(old.body)
