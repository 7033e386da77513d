"""Request events kept in memory and written in batches, for hot API paths.

A cache-hit POST is answered from memory in well under a millisecond; writing its statistics row in a
transaction of its own would cost more than the answer. ``RequestBuffer.add`` only appends to a list; one
daemon thread writes what has gathered every ``FLUSH_SECONDS`` with ``StatsRecorder.record_requests`` (one
transaction, two bulk inserts). Statistics may lag by that long; on shutdown ``close()`` writes the rest.
A batch the database refuses is dropped (and logged), as ``record_request`` drops a refused event; beyond
``MAX_PENDING`` unwritten events (a slow database) the oldest are dropped. ``dropped`` counts both.
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from sysup.stats.recorder import StatsRecorder, recorder_for

log = logging.getLogger(__name__)

#: How often the writer thread stores what has gathered (seconds).
FLUSH_SECONDS = 0.5
#: Events kept while the database does not take them; older ones are dropped.
MAX_PENDING = 100_000


class RequestBuffer:
    """Collects ``StatsRecorder.record_request`` keyword arguments; thread-safe, one writer thread."""

    def __init__(
        self, recorder: StatsRecorder, flush_seconds: float = FLUSH_SECONDS, max_pending: int = MAX_PENDING
    ) -> None:
        self._recorder = recorder
        self._flush_seconds = flush_seconds
        self._max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def add(self, **event: Any) -> None:
        """Queue one request event (``at`` defaults to now); never blocks on the database."""
        event.setdefault("at", datetime.now(UTC))
        with self._lock:
            self._pending.append(event)
            if len(self._pending) > self._max_pending:
                del self._pending[0]
                self.dropped += 1
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="sysup-stats-buffer", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Write everything queued so far; how many events were stored."""
        with self._lock:
            batch, self._pending = self._pending, []
        stored = self._recorder.record_requests(batch)
        if batch and not stored:  # the database refused them (and the recorder logged why): as record_request
            self.dropped += len(batch)
        return stored

    def close(self) -> None:
        """Stop the writer thread and write what is left."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._wake.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:  # never let the writer die: statistics are not worth a crash
                log.exception("statistics buffer: flush failed")


_buffers: weakref.WeakKeyDictionary[Engine, RequestBuffer] = weakref.WeakKeyDictionary()
_buffers_lock = threading.Lock()


def buffer_for(engine: Engine) -> RequestBuffer:
    """The request buffer of ``engine`` (one per engine and process), writing through ``recorder_for``."""
    with _buffers_lock:
        buffer = _buffers.get(engine)
        if buffer is None:
            buffer = _buffers[engine] = RequestBuffer(recorder_for(engine))
        return buffer


def close_buffer(engine: Engine) -> None:
    """Write what ``engine``'s buffer holds and stop its thread (the API lifespan calls this on shutdown)."""
    with _buffers_lock:
        buffer = _buffers.pop(engine, None)
    if buffer is not None:
        buffer.close()
