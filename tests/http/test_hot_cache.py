"""The in-process cache of hot answers forgets by age and by count."""

from __future__ import annotations

from twisted.internet.task import Clock

from asud.http.hot_cache import HotCache


def test_entries_expire_after_max_age() -> None:
    clock = Clock()
    cache: HotCache[str, bytes] = HotCache(10, 5.0, clock)
    cache.put("a", b"1")
    clock.advance(5.0)
    assert cache.get("a") == b"1"
    clock.advance(0.1)
    assert cache.get("a") is None


def test_least_recently_used_is_dropped_first() -> None:
    cache: HotCache[str, int] = HotCache(2, 60.0, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest use
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_discard_and_clear() -> None:
    cache: HotCache[str, int] = HotCache(4, 60.0, Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.discard("a")
    cache.discard("missing")
    assert cache.get("a") is None and cache.get("b") == 2
    cache.clear()
    assert cache.get("b") is None


def test_zero_entries_disables_caching() -> None:
    cache: HotCache[str, int] = HotCache(0, 60.0, Clock())
    cache.put("a", 1)
    assert cache.get("a") is None


def test_a_shorter_max_age_per_entry() -> None:
    clock = Clock()
    cache: HotCache[str, int] = HotCache(4, 30.0, clock)
    cache.put("short", 1, max_age=2.0)
    cache.put("long", 2, max_age=100.0)
    cache.put("gone", 3, max_age=0)
    clock.advance(2.5)
    assert (cache.get("short"), cache.get("long"), cache.get("gone")) == (None, 2, None)
    clock.advance(28.0)
    assert cache.get("long") is None
