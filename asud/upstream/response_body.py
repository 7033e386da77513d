"""Reading an HTTP response body chunk by chunk, with a timeout that can stop it.

Like ``treq.collect`` (each chunk goes to a ``sink``; a sink that raises closes the connection and fails
the read), but the returned Deferred can be cancelled — by a caller or a timeout — and then closes the
connection instead of leaving the transfer running. Two timeouts: ``whole`` bounds the entire body,
``idle`` bounds the silence between chunks (for downloads that may take minutes but must not stall).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectError, DNSLookupError
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IResponse

__all__ = ["BodyReader", "describe_failure", "guarded", "is_cancellation"]

_T = TypeVar("_T")


class BodyReader(Protocol):
    """Delivers a body to ``sink``; ``done`` fires at its end."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.done: Deferred[None] = Deferred(self._cancel)
        self._idle: float | None = None
        self._watchdog: IDelayedCall | None = None
        self._stopping = False

    @classmethod
    def read(cls, response: IResponse, sink: Callable[[bytes], None], reactor: Any, *,
             whole: float | None = None, idle: float | None = None) -> Deferred[None]:
        """Read ``response``'s body into ``sink``; ``defer.TimeoutError`` when a timeout expires."""
        reader = cls(sink)
        done = reader.done
        if idle is not None:
            reader._idle = idle
            reader._watchdog = reactor.callLater(idle, reader._stalled)
            done.addBoth(reader._stop_watchdog)
        response.deliverBody(reader)
        if whole is not None:
            done.addTimeout(whole, reactor)
        return done

    def dataReceived(self, data: bytes) -> None:
        if self.done.called or self._stopping:
            return
        if self._watchdog is not None and self._watchdog.active() and self._idle is not None:
            self._watchdog.reset(self._idle)
        try:
            self.sink(data)
        except BaseException:
            self._fail(Failure())

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called or self._stopping:
            return  # we closed it: the reason we stopped is the answer, not the lost connection
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(None)
        else:
            self.done.errback(reason)

    def _close(self) -> None:
        self._stopping = True
        if self.transport is not None:
            self.transport.stopProducing()

    def _fail(self, failure: Failure) -> None:
        """Fail ``done`` with ``failure`` first, then close the connection."""
        if not self.done.called:
            self.done.errback(failure)
        self._close()

    def _cancel(self, done: Deferred[None]) -> None:
        self._close()  # Deferred.cancel then fails ``done`` with CancelledError

    def _stalled(self) -> None:
        self._watchdog = None
        self._fail(Failure(defer.TimeoutError(f"no data for {self._idle:g} s")))

    def _stop_watchdog(self, result: Any) -> Any:
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()
        self._watchdog = None
        return result


def describe_failure(exc: BaseException) -> str:
    """``Kind: reason`` for a transport failure; connection failures read ``ConnectError: …`` whatever
    Twisted class raised them, so logs and messages do not depend on the HTTP library."""
    reasons = getattr(exc, "reasons", None)
    if isinstance(exc, ResponseFailed | defer.FirstError) or reasons:
        inner = reasons[0] if reasons else None
        if isinstance(inner, Failure):
            exc = inner.value
    kind = "ConnectError" if isinstance(exc, ConnectError | DNSLookupError) else type(exc).__name__
    text = str(exc).strip() or kind
    return f"{kind}: {text}"


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``CancelledError``, bare or wrapped by the HTTP client (``ResponseNeverReceived``
    and its kin carry the reasons of a cancelled request)."""
    if isinstance(exc, defer.CancelledError):
        return True
    reasons = getattr(exc, "reasons", None) or ()
    return any(isinstance(reason, Failure) and reason.check(defer.CancelledError) for reason in reasons)


def guarded(inner: Deferred[_T]) -> Deferred[_T]:
    """A Deferred that follows ``inner``; cancelling it cancels ``inner`` and fails with ``CancelledError``
    whatever ``inner`` then reports (the HTTP client turns a cancelled connection attempt into a DNS or
    connection error, which must not be mistaken for an upstream failure and retried)."""
    cancelled = False

    def cancel(outer: Deferred[_T]) -> None:
        nonlocal cancelled
        cancelled = True
        inner.cancel()

    outer: Deferred[_T] = Deferred(cancel)

    def forward(result: Any) -> None:
        if outer.called:
            return None  # cancelled earlier; whatever came of it is dropped
        if cancelled:
            outer.errback(Failure(defer.CancelledError()))
        elif isinstance(result, Failure):
            outer.errback(result)
        else:
            outer.callback(result)
        return None

    inner.addBoth(forward)
    return outer
