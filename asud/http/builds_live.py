"""``GET /api/v1/builds/live``: every build on the server as Server-Sent Events, for operators.

Events (each ``data`` is JSON with the build's image key as ``key``): ``started`` (``node``), ``status``
(``stage``), ``line`` (``t``, ``step``, ``text``), ``finished`` (``status``: ``done``/``failed``,
``detail``). The source is the ``asud:live`` stream every daemon on the Redis writes to, so one daemon
shows the builds of all; ids are its stream ids and ``Last-Event-ID`` resumes. Without it the stream starts
now (no backlog).

Access: with ``[http] admin_token`` set, ``Authorization: Bearer <token>`` is required (401 otherwise);
without it only a client on this host (loopback, not through a proxy) is answered (403 otherwise).
Disconnects and slow readers are handled as in :mod:`asud.http.build_log`.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from zope.interface import implementer

from asud.http.build_log import KEEPALIVE_SECONDS, _last_event_id, sse_event
from asud.http.errors import json_app
from asud.http.log_hub import hub_for
from asud.http.rate_limit import peer_host
from asud.http.responses import error_answer
from asud.store.logstream import LIVE_KEY, LogEntry

__all__ = ["LiveBuilds", "live_event"]

log = Logger()


def live_event(entry: LogEntry) -> bytes:
    """One entry of ``asud:live`` as an SSE event."""
    if entry.kind == "line":
        return sse_event("line", {"key": entry.key, **entry.as_json()}, entry.id)
    if entry.kind == "status":
        return sse_event("status", {"key": entry.key, "t": entry.t, "stage": entry.text}, entry.id)
    if entry.kind == "start":
        return sse_event("started", {"key": entry.key, "t": entry.t, "node": entry.text}, entry.id)
    status, _, detail = entry.text.partition(": ")
    data = {"key": entry.key, "t": entry.t, "status": status, "detail": detail or status}
    return sse_event("finished", data, entry.id)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "")  # a unix socket peer has no address: it is on this host


@implementer(IPushProducer)
class _LiveFollower:
    """One operator's stream: live entries until the client leaves (pause: leave the hub; resume: read on
    from Redis after the last id)."""

    def __init__(self, state: Any, request: IRequest, after: str) -> None:
        self.hub = hub_for(state)
        self.request = request
        self.last = after
        self.subscription: Any = None
        self.ended = False
        self.paused = False
        self.done: Deferred[None] = Deferred(lambda _: self._stop())
        self.keepalive = LoopingCall(lambda: self.request.write(b": keepalive\n\n"))
        self.keepalive.clock = state.clock

    def start(self) -> Deferred[None]:
        self.request.registerProducer(self, True)
        self.request.write(b": asud live builds\n\n")
        self._subscribe()
        self.keepalive.start(KEEPALIVE_SECONDS, now=False)
        return self.done

    def _subscribe(self) -> None:
        self.subscription = self.hub.subscribe(LIVE_KEY, self.last, self._entries, self._failed)

    def _entries(self, entries: list[LogEntry]) -> None:
        if not self.ended:
            self.last = entries[-1].id
            self.request.write(b"".join(live_event(entry) for entry in entries))

    def _failed(self, failure: Failure) -> None:
        log.warn("live builds: {error}", error=failure.getErrorMessage())
        if not self.ended:
            self._stop()
            self.done.callback(None)

    def _stop(self) -> None:
        self.ended = True
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None
        if self.keepalive.running:
            self.keepalive.stop()
        with contextlib.suppress(AttributeError, RuntimeError):
            self.request.unregisterProducer()

    def pauseProducing(self) -> None:
        if not self.paused and not self.ended:
            self.paused = True
            if self.subscription is not None:
                self.subscription.close()
                self.subscription = None

    def resumeProducing(self) -> None:
        if self.paused and not self.ended:
            self.paused = False
            self._subscribe()

    def stopProducing(self) -> None:
        if not self.ended:
            self._stop()


class LiveBuilds:
    """The operators' surface."""

    app = json_app()

    def __init__(self, state: Any) -> None:
        self.state = state

    def resource(self) -> object:
        return self.app.resource()

    @app.route("/api/v1/builds/live", methods=["GET"])
    def live(self, request: IRequest) -> bytes | Deferred[Any]:
        """Every build on the server as Server-Sent Events (``started``, ``status``, ``line``,
        ``finished``); ``Authorization: Bearer`` with ``[http] admin_token``, else loopback only."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        return ensureDeferred(self._stream(request))

    def _refused(self, request: IRequest) -> bytes | None:
        token = self.state.config.http.admin_token
        if token:
            given = (request.getHeader(b"authorization") or b"").decode("latin-1")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                request.setHeader(b"WWW-Authenticate", b'Bearer realm="asud"')
                return error_answer(request, 401, "Unauthorized: this stream needs the admin token")  # type: ignore[no-any-return]
            return None
        if not _is_loopback(peer_host(request)):
            return error_answer(request, 403, "Forbidden: set [http] admin_token to follow builds from "  # type: ignore[no-any-return]
                                              "another host")
        return None

    async def _stream(self, request: IRequest) -> None:
        after = _last_event_id(request)
        if after == "0-0":  # from now on: the stream's last id (or the start of an empty one)
            newest = await self.state.redis.call("XREVRANGE", LIVE_KEY, "+", "-", "COUNT", 1)
            after = newest[0][0] if newest else "0-0"
        request.setHeader(b"Content-Type", b"text/event-stream")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Accel-Buffering", b"no")
        await _LiveFollower(self.state, request, after).start()
