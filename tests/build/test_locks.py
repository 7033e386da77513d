"""``flock`` locks shared with other daemons: one holder excludes another, and a holder can tell when the
file it locked is no longer the one its path names (what makes removing lock files safe)."""

from __future__ import annotations

from pathlib import Path

from asud.build.locks import FileLock


def test_an_exclusive_holder_excludes_another_until_it_releases(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "locks" / "a"), FileLock(tmp_path / "locks" / "a")
    assert first.try_acquire() and first.held
    assert not second.try_acquire() and not second.held
    first.release()
    assert second.try_acquire()
    second.release()


def test_a_lock_on_a_removed_or_replaced_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "ws-1.lock"
    lock = FileLock(path)
    assert not lock.names_held_file()  # not held
    assert lock.try_acquire() and lock.names_held_file()
    path.unlink()  # the removal a sweeper makes
    assert not lock.names_held_file()
    fresh = FileLock(path)
    assert fresh.try_acquire()  # a new file at the same path: the old lock does not exclude it
    assert fresh.names_held_file() and not lock.names_held_file()
    lock.release()
    fresh.release()
