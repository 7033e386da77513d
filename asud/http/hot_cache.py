"""A small LRU with a maximum age, for answers on hot read paths.

A finished build's answer and the ``/json/v1`` documents are read far more often than they change; keeping
their rendered bytes here answers them without a Redis round trip or a catalog walk. Entries are
short-lived because other daemons on the same Redis (and the housekeeping that purges results) change the
truth behind them. Used from the reactor thread only, so it needs no lock; time comes from the reactor
(or a ``Clock`` in tests).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

from twisted.internet.interfaces import IReactorTime

K = TypeVar("K")
V = TypeVar("V")


class HotCache(Generic[K, V]):
    """At most ``max_entries`` values, each forgotten ``max_age`` seconds after it was stored."""

    def __init__(self, max_entries: int, max_age: float, clock: IReactorTime) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max_entries = max_entries
        self._max_age = max_age
        self._clock = clock

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if self._clock.seconds() - stored_at > self._max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, max_age: float | None = None) -> None:
        """Keep ``value`` for ``max_age`` seconds at most (never longer than the cache's own maximum)."""
        if self._max_entries <= 0 or (max_age is not None and max_age <= 0):
            return
        shortened = 0.0 if max_age is None else max(0.0, self._max_age - max_age)
        # Stored as if older, so one comparison in get() honours both limits.
        self._entries[key] = (self._clock.seconds() - shortened, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
