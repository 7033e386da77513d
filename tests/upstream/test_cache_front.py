"""The reactor side of the upstream cache: answers before the disk has them, writes behind in order,
``flush`` leaves the disk complete, memory stays within its bounds, a failed write is only logged."""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from asud.upstream.cache_front import CacheFront
from asud.upstream.etag_cache import EtagCache


@pytest_twisted.ensureDeferred
async def test_a_put_is_answered_at_once_and_on_disk_after_flush(tmp_path: Path) -> None:
    front = CacheFront(EtagCache(tmp_path))
    front.put("http://u/a", b"one", '"1"', None)
    front.put("http://u/a", b"two", '"2"', None)  # the latest write of a URL wins
    front.put_absent("http://u/gone")
    entry = await front.get("http://u/a")
    assert entry is not None and (entry.body, entry.etag) == (b"two", '"2"')
    await front.flush()
    disk = EtagCache(tmp_path)  # a restarted daemon
    stored = disk.get("http://u/a")
    assert stored is not None and (stored.body, stored.etag) == (b"two", '"2"')
    gone = disk.get("http://u/gone")
    assert gone is not None and gone.absent
    # An answer without validators forgets the URL, in memory and on disk.
    front.put("http://u/a", b"three", None, None)
    assert await front.get("http://u/a") is None
    await front.flush()
    assert disk.get("http://u/a") is None and await CacheFront(disk).get("http://u/a") is None


@pytest_twisted.ensureDeferred
async def test_memory_is_bounded_and_the_disk_answers_the_rest(tmp_path: Path) -> None:
    front = CacheFront(EtagCache(tmp_path / "cache"), max_bytes=250, max_entry=100)
    for number in range(5):
        front.put(f"http://u/{number}", bytes([number]) * 100, f'"{number}"', None)
    front.put("http://u/big", b"x" * 101, '"big"', None)
    await front.flush()
    for number in (0, 4):  # the disk answers what memory let go; reading it makes it recent again
        entry = await front.get(f"http://u/{number}")
        assert entry is not None and entry.body == bytes([number]) * 100
    big = await front.get("http://u/big")
    assert big is not None and big.body == b"x" * 101
    # With the disk gone, only what memory kept is answered: the two most recently used, not the big one.
    (tmp_path / "cache").rename(tmp_path / "elsewhere")
    kept = [number for number in range(5) if await front.get(f"http://u/{number}") is not None]
    assert kept == [0, 4] and await front.get("http://u/big") is None


@pytest_twisted.ensureDeferred
async def test_a_failed_write_is_logged_and_the_answer_kept(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")
    front = CacheFront(EtagCache(blocked))  # its directory is a file: every write fails
    front.put("http://u/a", b"body", '"e"', None)
    await front.flush()
    entry = await front.get("http://u/a")
    assert entry is not None and entry.body == b"body"
    front.put("http://u/b", b"body", '"e"', None)
    await front.flush()  # the writer is not stuck after a failure
    assert EtagCache(blocked).get("http://u/b") is None
