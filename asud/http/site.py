"""The ``Site`` the daemon listens with: request bodies bounded while they arrive, access log on request.

The largest honest body is a build request (``max_packages`` names, a ``defaults`` script and a few
repositories), well under 1 MiB. Twisted reads a whole body before any resource sees it (into memory, or a
temporary file above 100 kB), so without a bound one client could fill the disk. :class:`BoundedRequest`
stops keeping a body once it passes ``[http] max_body_bytes`` (declared ``Content-Length`` or counted
chunks) and marks it; the root resource then answers 413. The root also checks the size of the body it is
given, so a host program that mounts the resource in its own ``Site`` gets the same 413 (only without the
early discard).
"""

from __future__ import annotations

import io
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

__all__ = ["AsudSite", "BoundedRequest", "make_site"]


class BoundedRequest(Request):
    """A request that keeps at most ``site.max_body_bytes`` of its body (``body_too_large`` past that)."""

    body_too_large = False

    def _limit(self) -> int | None:
        limit: int | None = getattr(getattr(self.channel, "site", None), "max_body_bytes", None)
        return limit

    def gotLength(self, length: int | None) -> None:
        if not length:  # no body (most requests): nothing to bound
            super().gotLength(length)
            return
        limit = self._limit()
        if limit is not None and length > limit:
            self._refuse_body()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        limit = self._limit()
        if limit is not None and self.content.tell() + len(data) > limit:
            self._refuse_body()
            return
        super().handleContentChunk(data)

    def _refuse_body(self) -> None:
        """Keep nothing more (the rest of the body is read and dropped; the root answers 413)."""
        self.body_too_large = True
        old = getattr(self, "content", None)
        if old is not None:
            old.close()
        self.content = io.BytesIO()


class AsudSite(Site):
    """A ``Site`` of :class:`BoundedRequest`; the per-request access log only when asked for."""

    requestFactory = BoundedRequest

    def __init__(self, resource: IResource, *, max_body_bytes: int, access_log: bool = False,
                 **kwargs: Any) -> None:
        # The API takes JSON only: never parse a form body into ``args`` (a big form costs CPU for nothing,
        # and ``?status_in_body=1`` reads form-typed bodies as JSON anyway).
        super().__init__(resource, parsePOSTFormSubmission=False, **kwargs)
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log
        self._open: dict[Any, tuple[Any, Deferred[None]]] = {}

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        if protocol is None:
            return None
        # Each connection is remembered with its transport until it closes, so a stopping daemon can close
        # it (below). Twisted's HTTP protocol is a proxy that does not show its transport: keep it here.
        closed: Deferred[None] = Deferred()
        make, lost = protocol.makeConnection, protocol.connectionLost

        def make_connection(transport: Any) -> None:
            self._open[protocol] = (transport, closed)
            make(transport)

        def connection_lost(reason: Any) -> None:
            self._open.pop(protocol, None)
            lost(reason)
            closed.callback(None)

        protocol.makeConnection = make_connection
        protocol.connectionLost = connection_lost
        return protocol

    def close_connections(self, grace: float = 0.0, clock: Any = None) -> Deferred[None]:
        """Close every open connection (kept-alive ones hold a 60 s idle timer); fires once all closed.

        A stopping daemon calls it after it stopped listening: an embedding program's reactor, or the
        next test, is then left with no connection and no timer of asud's. With ``grace`` an HTTP/1.1
        connection that is answering a request closes once that answer is out (``Connection: close``), and
        is cut after ``grace`` seconds if it is still open then (a followed live log); idle ones close now.
        """
        open_now = list(self._open.items())
        for protocol, (transport, _closed) in open_now:
            channel = getattr(protocol, "_channel", None)
            requests = getattr(channel, "requests", None) if grace > 0 else None
            if requests:
                channel.persistent = False
                for request in requests:
                    if not request.startedWriting:
                        request.setHeader(b"Connection", b"close")
            else:
                transport.loseConnection()
        closed_all = DeferredList([closed for _protocol, (_transport, closed) in open_now])
        busy = [transport for protocol, (transport, _closed) in open_now if protocol in self._open]
        if busy and grace > 0:
            if clock is None:
                from twisted.internet import reactor as clock
            cut = clock.callLater(grace, lambda: [item.abortConnection() for item in busy
                                                  if item.connected])

            def cancel_cut(result: object) -> object:
                if cut.active():
                    cut.cancel()
                return result

            closed_all.addBoth(cancel_cut)
        return closed_all.addCallback(lambda _: None)

    def startFactory(self) -> None:
        # Twisted keeps the access log's date string fresh with a timer firing every second; without an
        # access log there is nothing to keep fresh (and a daemon embedded in tests leaves no timer behind).
        if self.access_log:
            super().startFactory()

    def log(self, request: Request) -> None:
        # A line per request costs about a quarter of the throughput (twisted-notes.md): off by default.
        if self.access_log:
            super().log(request)


def make_site(resource: IResource, *, max_body_bytes: int, access_log: bool = False,
              **kwargs: Any) -> AsudSite:
    """The site to listen with (``kwargs`` go to ``Site``, e.g. ``timeout=None`` in tests)."""
    return AsudSite(resource, max_body_bytes=max_body_bytes, access_log=access_log, **kwargs)
