"""Small helpers of the build tests: wait on the reactor, and wait until something holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

__all__ = ["eventually", "sleep"]


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)  # type: ignore[arg-type]


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait until ``check()`` (a value or a Deferred) is true; ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if isinstance(value, Deferred):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await sleep(0.02)
