"""A small in-process LRU with a maximum age, for answers on hot read paths.

A finished build's answer and the overview documents are read far more often than they change; keeping
their rendered bytes here lets the event loop answer without a thread hop or a database query. Entries are
short-lived because other processes (workers, other API instances) change the truth behind them.
Safe to use from the event loop and from threadpool endpoints at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class HotCache(Generic[K, V]):
    """At most ``max_entries`` values, each forgotten ``max_age`` seconds after it was stored."""

    def __init__(self, max_entries: int, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, value = entry
            if self._clock() - stored_at > self._max_age:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, max_age: float | None = None) -> None:
        """Keep ``value`` for ``max_age`` seconds at most (never longer than the cache's own maximum)."""
        if self._max_entries <= 0 or (max_age is not None and max_age <= 0):
            return
        shortened = 0.0 if max_age is None else max(0.0, self._max_age - max_age)
        with self._lock:
            # Stored as if older, so one comparison in get() honours both limits.
            self._entries[key] = (self._clock() - shortened, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
