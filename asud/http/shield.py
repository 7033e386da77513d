"""Keep work alive when a client goes away.

On a client disconnect Klein cancels the route's Deferred, for POST too, and a cancellation runs down the
chain into whatever the route is waiting on. A build submission half done (the build recorded, not yet
queued), a package feed being parsed for everybody, a Redis reply other requests share: none of these may
be cancelled because one client hung up. A route waits on ``shielded(work)`` instead of ``work``: cancelling
the shield fails only the route, and ``work`` runs to its end (its failure, if any, is logged).
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.errors import AsudError

__all__ = ["shielded"]

log = Logger()
T = TypeVar("T")


def shielded(work: Deferred[T]) -> Deferred[T]:
    """A Deferred with ``work``'s result whose cancellation does not reach ``work``."""
    shield: Deferred[T] = Deferred()

    def relay(result: Any) -> None:
        if not shield.called:
            shield.callback(result)  # a Failure errbacks
        elif isinstance(result, Failure) and not result.check(AsudError):
            # The route is gone, so nobody else will see this; an AsudError is an answer nobody waits for.
            log.failure("work finished after its request was cancelled", result)
        return None

    work.addBoth(relay)
    return shield
