"""``GET /api/v1/build/{request_hash}/log``: a build's log as text, followed (``?follow=1``), or as
Server-Sent Events (``Accept: text/event-stream``).

* Plain: the log so far, as ``build.log`` reads; a finished build's whole ``build.log`` from the files
  store (Redis keeps a capped stream, and forgets it after a while).
* ``?follow=1``: the same, then every new line as it comes (chunked), until the build ends; the last line
  is ``done`` or ``failed: <reason>``. A queued build first prints ``queued: position N`` as it changes.
* SSE: ``event: line`` (``{"t", "step", "text"}``), ``event: status`` (a stage, the start, the queue
  position), ``event: end`` (``{"t", "status", "detail"}``); each entry's ``id`` is its stream id, so a
  browser reconnecting with ``Last-Event-ID`` resumes exactly after what it had.

Followers read through the daemon's :class:`~asud.http.log_hub.LogHub`. A client that hangs up cancels the
route's Deferred, whose canceller drops the subscription; nothing else happens (the build runs on).
Back-pressure: the follower is the request's push producer. When the client's socket cannot keep up,
Twisted pauses it: it leaves the hub and buffers nothing; when resumed it reads on from Redis after its
last id, so a slow reader costs no memory and loses nothing the capped stream still holds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import weakref
from pathlib import Path
from typing import Any

from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from zope.interface import implementer

from asud.build.logsink import BUILD_LOG
from asud.build.stages import BuildStatus
from asud.http.build_answers import NOT_FOUND_BODY
from asud.http.log_hub import LogHub, hub_for, read_log
from asud.http.responses import json_answer
from asud.store.logstream import LogEntry, end_text, entries_text, log_key

__all__ = ["BuildLogs", "Follower", "sse_event"]

log = Logger()

#: Seconds between looks at a followed build's record (queue position, an end nobody wrote).
POLL_SECONDS = 2.0
#: Seconds between looks at the record of a build whose lines are flowing.
RECHECK_SECONDS = 20.0
#: Seconds one read of a build's record answers every log route asking for it.
VIEW_SECONDS = 1.0
#: Seconds between SSE comments on a quiet stream (proxies close idle connections).
KEEPALIVE_SECONDS = 15.0


def sse_event(event: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@functools.lru_cache(maxsize=4096)
def _sse_of(entry: LogEntry) -> bytes:
    """One entry as its event; cached, as every follower of a build writes the same bytes."""
    if entry.kind == "line":
        return sse_event("line", entry.as_json(), entry.id)
    if entry.kind == "status":
        return sse_event("status", {"t": entry.t, "status": "started", "stage": entry.text}, entry.id)
    if entry.kind == "start":
        return sse_event("status", {"t": entry.t, "status": "started", "stage": "init", "node": entry.text},
                         entry.id)
    status, _, detail = entry.text.partition(": ")
    return sse_event("end", {"t": entry.t, "status": status, "detail": detail or status}, entry.id)


#: The last batches written, as SSE bytes and whether they hold the end, by (stream, first id, last id,
#: count): the hub hands every follower of a stream the same batch, so one join serves them all.
_BATCHES: dict[tuple[str, str, str, int], tuple[bytes, bool]] = {}
_BATCHES_KEPT = 64


def _sse_batch(stream: str, entries: list[LogEntry]) -> tuple[bytes, bool]:
    key = (stream, entries[0].id, entries[-1].id, len(entries))
    batch = _BATCHES.get(key)
    if batch is None:
        if len(_BATCHES) >= _BATCHES_KEPT:
            _BATCHES.clear()
        batch = (b"".join(_sse_of(entry) for entry in entries), any(entry.kind == "end" for entry in entries))
        _BATCHES[key] = batch
    return batch


def _flush(request: IRequest) -> None:
    """Send what a follower was just given in this reactor turn, not the next one.

    A transport's ``write`` only buffers; the reactor sends in its next turn. With 500 followers that
    next turn is 500 sends long, and the hub's next read and the log sink's next write waited behind it
    (each line crosses the reactor three times: pipe → Redis → hub → sockets): 500 followers' p50 from
    Redis to follower went 32 → 18 ms when each follower's bytes go out as it gets them. ``doWrite`` is
    what the reactor itself calls; a socket that cannot take it all keeps the rest buffered and stays
    registered for writing, and an error it returns is met again by the reactor's own ``doWrite``.
    """
    transport = getattr(getattr(request, "channel", None), "transport", None)
    if isinstance(transport, FileDescriptor) and transport.connected and not transport.disconnecting:
        transport.doWrite()


def wants_sse(request: IRequest) -> bool:
    accept = (request.getHeader(b"accept") or b"").decode("latin-1")
    return "text/event-stream" in accept


def _flag(request: IRequest, name: bytes) -> bool:
    values = request.args.get(name) or []
    return bool(values) and values[-1].lower() in (b"1", b"true", b"yes")


@implementer(IPushProducer)
class Follower:
    """One streaming answer: backlog, then live entries, until the end entry (see the module docstring)."""

    def __init__(self, logs: BuildLogs, request: IRequest, request_hash: str, image_key: str, *, sse: bool,
                 after: str) -> None:
        self.logs = logs
        self.request = request
        self.request_hash = request_hash
        self.stream = log_key(image_key)
        self.sse = sse
        self.last = after
        self.step: str | None = None
        self.subscription: Any = None
        self.done: Deferred[None] = Deferred(lambda _: self._stop())
        self.paused = False
        self.ended = False
        self.seen_entry = False
        self.queue_position: int | None = None
        self.finished_polls = 0
        self.poll = LoopingCall(self._poll)
        self.poll.clock = logs.state.clock
        self.quiet = 0.0
        self.looking: Deferred[None] | None = None
        self.since_look = 0.0

    # -- life ---------------------------------------------------------------------------------------------
    def start(self) -> Deferred[None]:
        self.request.registerProducer(self, True)
        self._subscribe()
        self.poll.start(POLL_SECONDS, now=True).addErrback(
            lambda failure: log.failure("log follower poll failed", failure))
        return self.done

    def _subscribe(self) -> None:
        self.subscription = self.logs.hub.subscribe(self.stream, self.last, self._entries, self._failed)

    def _stop(self) -> None:
        """Cancelled (the client left) or ended: leave the hub, stop polling; the build is untouched."""
        self.ended = True
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None
        if self.poll.running:
            self.poll.stop()
        if self.looking is not None and not self.looking.called:
            self.looking.cancel()
        with contextlib.suppress(AttributeError, RuntimeError):  # the connection is already gone
            self.request.unregisterProducer()

    def _finish(self) -> None:
        if self.ended:
            return
        self._stop()
        self.done.callback(None)

    def _failed(self, failure: Failure) -> None:
        log.warn("log of {hash}: {error}", hash=self.request_hash, error=failure.getErrorMessage())
        self._write_end("failed: the log is unavailable, retry later" if not self.sse else None)
        self._finish()

    # -- IPushProducer --------------------------------------------------------------------------------
    def pauseProducing(self) -> None:
        if self.paused or self.ended:
            return
        self.paused = True
        if self.subscription is not None:
            self.subscription.close()
            self.subscription = None

    def resumeProducing(self) -> None:
        if not self.paused or self.ended:
            return
        self.paused = False
        self._subscribe()

    def stopProducing(self) -> None:
        if not self.ended:
            self._stop()

    # -- output -----------------------------------------------------------------------------------------
    def _entries(self, entries: list[LogEntry]) -> None:
        if self.ended:
            return
        self.seen_entry = True
        self.quiet = 0.0
        self.last = entries[-1].id
        if self.sse:
            data, ends = _sse_batch(self.stream, entries)
            self.request.write(data)
            _flush(self.request)
            if ends:
                self._finish()
            return
        text, self.step = entries_text(entries, step=self.step)
        if text:
            self.request.write(text.encode("utf-8"))
            _flush(self.request)
        for entry in entries:
            if entry.kind == "end":
                self.request.write(f"{entry.text}\n".encode())
                self._finish()
                return

    def _write_end(self, text: str | None) -> None:
        if text is not None:
            self.request.write(f"{text}\n".encode())

    def _poll(self) -> Deferred[None] | None:
        if self.ended:
            return None
        self.quiet += POLL_SECONDS
        if self.sse and self.quiet >= KEEPALIVE_SECONDS:
            self.quiet = 0.0
            self.request.write(b": keepalive\n\n")
        # Once lines flow they tell the story; the record is asked only now and then (a build whose end
        # never reached its stream), so 500 followers of a running build cost Redis nothing per tick.
        self.since_look += POLL_SECONDS
        if self.seen_entry and self.since_look < RECHECK_SECONDS:
            return None
        self.since_look = 0.0
        self.looking = ensureDeferred(self._look())
        self.looking.addErrback(lambda failure: failure.trap(CancelledError) and None)
        return self.looking

    async def _look(self) -> None:
        view = await self.logs.view(self.request_hash)
        if self.ended:
            return
        if view is None:
            self._write_end(None if self.sse else "failed: the build is no longer known")
            self._finish()
            return
        status = BuildStatus(view.status)
        if status is BuildStatus.QUEUED and not self.seen_entry:
            if view.queue_position != self.queue_position:
                self.queue_position = view.queue_position
                if self.sse:
                    self.request.write(sse_event("status", {"status": "queued",
                                                            "queue_position": view.queue_position}))
                else:
                    self.request.write(f"queued: position {view.queue_position}\n".encode())
        elif status.is_finished:
            # The end entry comes right after the record; a build whose end never reached its stream
            # (Redis away at that moment) ends here after two more looks.
            self.finished_polls += 1
            if self.finished_polls > 2:
                error = None if status is BuildStatus.DONE else view.detail
                if self.sse:
                    self.request.write(sse_event("end", {"status": status.value, "detail": view.detail}))
                else:
                    self.request.write(f"{end_text(error)}\n".encode())
                self._finish()


class _Shared:
    """One read of a build's record, handed to everyone who asks while it is fresh; kept in ``views``
    under ``key`` only while it is pending or found (not ``None``, not a failure)."""

    _PENDING: Any = object()

    def __init__(self, reading: Deferred[Any], at: float, views: dict[str, _Shared], key: str) -> None:
        self.at = at
        self.result: Any = self._PENDING
        self.waiters: list[Deferred[Any]] = []
        self.views = views
        self.key = key
        reading.addBoth(self._fire)

    @property
    def keepable(self) -> bool:
        return self.result is self._PENDING or not (self.result is None or isinstance(self.result, Failure))

    def _fire(self, result: Any) -> None:
        self.result = result
        if not self.keepable and self.views.get(self.key) is self:
            del self.views[self.key]
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            _give(waiter, result)

    def get(self) -> Deferred[Any]:
        waiter: Deferred[Any] = Deferred()
        if self.result is self._PENDING:
            self.waiters.append(waiter)
        else:
            _give(waiter, self.result)
        return waiter


def _give(waiter: Deferred[Any], result: Any) -> None:
    if waiter.called:
        return  # its follower gave up (cancelled)
    if isinstance(result, Failure):
        waiter.errback(result)
    else:
        waiter.callback(result)


#: Reads of build records shared by all log routes of a daemon (its ``AsudApp``), by request hash.
_VIEWS: weakref.WeakKeyDictionary[Any, dict[str, _Shared]] = weakref.WeakKeyDictionary()


class BuildLogs:
    """The log routes' work; one per HTTP resource, sharing the daemon's hub."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def view(self, request_hash: str) -> Deferred[Any]:
        """The record view of ``request_hash``, read at most once per ``VIEW_SECONDS`` for all who ask: 500
        followers of a queued build, or 500 arriving at once, cost one Redis read, not 500. A build not
        found (``None``) or a failed read is not kept."""
        views = _VIEWS.setdefault(self.state, {})
        now = self.state.clock.seconds()
        shared = views.get(request_hash)
        if shared is None or now - shared.at >= VIEW_SECONDS:
            if len(views) >= 1000:
                for stale in [key for key, kept in views.items() if now - kept.at >= VIEW_SECONDS]:
                    del views[stale]
            reading = ensureDeferred(self.state.build_records().get(request_hash))
            shared = _Shared(reading, now, views, request_hash)
            if shared.keepable:
                views[request_hash] = shared
        return shared.get()

    @property
    def hub(self) -> LogHub:
        return hub_for(self.state)

    def answer(self, request: IRequest, request_hash: str) -> Deferred[bytes | None]:
        return ensureDeferred(self._answer(request, request_hash))

    async def _answer(self, request: IRequest, request_hash: str) -> bytes | None:
        view = await self.view(request_hash)
        if view is None:
            return json_answer(request, NOT_FOUND_BODY, 404)
        sse = wants_sse(request)
        follow = sse or _flag(request, b"follow")
        finished = BuildStatus(view.status).is_finished
        end = end_text(None if view.status is BuildStatus.DONE else view.detail) if finished else None
        if request.method == b"HEAD":
            request.setHeader(b"Content-Type", b"text/event-stream" if sse else b"text/plain; charset=utf-8")
            return b""
        stored = await self._stored_log(view.image_key) if finished else None
        if sse:
            request.setHeader(b"Content-Type", b"text/event-stream")
            request.setHeader(b"Cache-Control", b"no-cache")
            request.setHeader(b"X-Accel-Buffering", b"no")
            after = _last_event_id(request)
            if stored is not None and not await self._has_stream(view.image_key):
                return _stored_as_sse(stored, after, view)
            return await Follower(self, request, request_hash, view.image_key, sse=True, after=after).start()
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        if stored is not None:
            return (stored + (f"{end}\n" if follow else "")).encode("utf-8")
        if not follow:
            return (await self._redis_text(view.image_key)).encode("utf-8")
        request.setHeader(b"X-Accel-Buffering", b"no")
        return await Follower(self, request, request_hash, view.image_key, sse=False, after="0-0").start()

    async def _has_stream(self, image_key: str) -> bool:
        return bool(await self.state.redis.call("EXISTS", log_key(image_key)))

    async def _redis_text(self, image_key: str) -> str:
        parts: list[str] = []
        after, step = "0-0", None
        while True:
            entries = await read_log(self.state.redis, log_key(image_key), after, 5000)
            text, step = entries_text(entries, step=step)
            parts.append(text)
            if len(entries) < 5000:
                return "".join(parts)
            after = entries[-1].id

    async def _stored_log(self, image_key: str) -> str | None:
        """The finished build's ``build.log`` from the files store, if it is there."""
        record = await self.state.build_records().record(image_key)
        if record is None:
            return None
        bin_dir = record.bin_dir or (record.job or {}).get("bin_dir")
        if not bin_dir:
            return None
        files = self.state.files

        def read() -> str | None:
            try:
                path: Path = files.resolve(bin_dir, BUILD_LOG)
                return path.read_text(encoding="utf-8", errors="replace")
            except (OSError, ValueError, KeyError):
                return None
            except Exception:
                return None

        return await deferToThread(read)


def _last_event_id(request: IRequest) -> str:
    """``Last-Event-ID`` (or ``?last_event_id=``) when it is a stream id, else from the start."""
    raw = request.getHeader(b"last-event-id")
    if raw is None:
        values = request.args.get(b"last_event_id") or []
        raw = values[-1] if values else b""
    text = raw.decode("latin-1").strip() if isinstance(raw, bytes) else str(raw).strip()
    ms, dash, seq = text.partition("-")
    if dash and ms.isdigit() and seq.isdigit():
        return text
    return "0-0"


def _stored_as_sse(stored: str, after: str, view: Any) -> bytes:
    """A finished build whose stream Redis forgot: its ``build.log`` lines as events ``0-<n>``."""
    skip = int(after.partition("-")[2] or 0) if after.startswith("0-") else 0
    events: list[bytes] = []
    step = ""
    number = 0
    for line in stored.splitlines():
        if line.startswith("==> stage: "):
            continue
        if line.startswith("==> "):
            step = line[4:]
            continue
        number += 1
        if number > skip:
            events.append(sse_event("line", {"t": 0, "step": step, "text": line}, f"0-{number}"))
    status = BuildStatus(view.status).value
    events.append(sse_event("end", {"status": status, "detail": view.detail}, f"0-{number + 1}"))
    return b"".join(events)

