"""Advisory file locks (``flock``) shared with other daemons on the same disk, taken without blocking.

Several daemons may share one data directory (and its ImageBuilder and package caches). Each
:class:`FileLock` opens its own descriptor, so two holders in one process exclude each other exactly as
two processes would. The reactor never waits inside ``flock``: :meth:`FileLock.acquire` tries without
blocking and, while somebody else holds the lock, tries again on a short timer (a cancellable Deferred).
Locks vanish with the process that held them, so a crashed daemon never leaves a cache locked.

Inside one daemon, work on the same key is shared first (one Deferred per key in the caches, each caller
waiting on its own :func:`follow` of it), so these locks only ever wait for *another* daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

__all__ = ["FileLock", "follow"]

_T = TypeVar("_T")

#: Seconds between two tries while another holder has the lock.
POLL_INTERVAL = 0.05


class FileLock:
    """A shared or exclusive lock on ``path`` (created if missing). Not re-entrant; one holder per object."""

    def __init__(self, path: Path, *, reactor: Any = None) -> None:
        self.path = path
        self._fd: int | None = None
        #: Only :meth:`acquire` waits on it (the global reactor when ``None``); ``try_acquire`` never does.
        self._reactor = reactor

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self, *, shared: bool = False) -> bool:
        """Take the lock now, or return ``False`` when somebody else holds it."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def acquire(self, *, shared: bool = False) -> Deferred[None]:
        """A Deferred that fires once the lock is held (cancel it to stop waiting)."""
        return Deferred.fromCoroutine(self._acquire(shared))

    async def _acquire(self, shared: bool) -> None:
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        while not self.try_acquire(shared=shared):
            await deferLater(reactor, POLL_INTERVAL, lambda: None)

    def names_held_file(self) -> bool:
        """Whether ``path`` still names the file this lock is held on. A holder that unlinks its lock file
        (a workspace's, see ``asud.build.workspace``) may do so between another's ``open`` and ``flock``:
        that other then holds a lock on a removed file, which excludes nobody."""
        if self._fd is None:
            return False
        try:
            named, held = os.stat(self.path), os.fstat(self._fd)
        except FileNotFoundError:
            return False
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Drop the lock; a no-op when not held."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> FileLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def follow(shared: Deferred[_T]) -> Deferred[_T]:
    """A Deferred with ``shared``'s result that one caller may cancel without cancelling ``shared``
    (the work other callers wait for too)."""
    waiter: Deferred[_T] = Deferred()

    def fire(result: Any) -> None:
        if not waiter.called:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    shared.addBoth(fire)
    return waiter
