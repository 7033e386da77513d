"""Every build's live log in Redis: one capped stream per build, and one capped stream of every build.

Keys (a build's key is its image key; one build serves many request hashes):

========================  ======  ====================================================================
``asud:log:<image key>``  stream  the build's entries, ``XADD … MAXLEN ~ maxlen``; expires ``keep``
                                  seconds after its last entry (``build.log`` in the files store stays)
``asud:live``             stream  every entry of every build, with its ``key``; ``MAXLEN ~ live_maxlen``
========================  ======  ====================================================================

An entry has the fields ``kind``, ``t`` (Unix seconds, when asud saw the line), ``step`` and ``text``:

* ``line``: one output line; ``step`` is where it came from (``make info``, ``make image``, ``asud`` …);
* ``status``: a stage change; ``text`` is the :class:`~asud.build.stages.BuildStage` value;
* ``start``: a builder took the build (``text`` is the node; a build handed back starts again);
* ``end``: the build ended; ``text`` is ``done`` or ``failed: <reason>`` — the last line a follower sees.

:class:`RedisLogSink` is the writer (a :class:`~asud.build.logsink.LogSink`): it never blocks and never
raises. A build's entries are queued in memory and written in order, in batches of one script call each
(the pool's several connections could otherwise reorder single ``XADD`` calls); while Redis is away at
most ``max_pending`` entries wait per build, the rest are counted and replaced by one marker line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from asud.build.stages import BuildStage
from asud.store.redis import Redis, Script

__all__ = [
    "LIVE_KEY", "LOG_PREFIX", "LogEntry", "RedisLogSink", "end_text", "entries_text", "log_key",
    "parse_entries", "read_entries", "stream_id",
]

log = Logger()

LOG_PREFIX = "asud:log:"
LIVE_KEY = "asud:live"
#: Entries kept per build (a real ``make image`` prints a few thousand lines).
MAXLEN = 50_000
LIVE_MAXLEN = 20_000
#: A build's stream lives this long after its last entry.
KEEP_SECONDS = 2 * 86400
#: Entries sent per script call.
BATCH = 500
#: Entries one build may have waiting for Redis before lines are dropped (and counted).
MAX_PENDING = 20_000


def log_key(image_key: str) -> str:
    return f"{LOG_PREFIX}{image_key}"


def end_text(error: str | None) -> str:
    """The ``end`` entry's text: ``done``, or ``failed: <reason>``."""
    return "done" if error is None else f"failed: {error}"


def stream_id(text: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` → a comparable pair (``ValueError`` for anything else)."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@attrs.frozen
class LogEntry:
    """One entry of a log stream; ``key`` is the image key (set on the live stream's entries)."""

    id: str
    kind: str
    t: float
    step: str
    text: str
    key: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"t": self.t, "step": self.step, "text": self.text}


def parse_entries(reply: Any) -> list[LogEntry]:
    """``XRANGE``'s (or one stream of ``XREAD``'s) nested lists → entries."""
    entries = []
    for entry_id, flat in reply or []:
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        try:
            t = float(fields.get("t", 0))
        except ValueError:
            t = 0.0
        entries.append(LogEntry(entry_id, fields.get("kind", "line"), t, fields.get("step", ""),
                                fields.get("text", ""), fields.get("key", "")))
    return entries


def read_entries(redis: Redis, stream: str, after: str = "0-0",
                 count: int = 1000) -> Deferred[list[LogEntry]]:
    """Entries of ``stream`` after the id ``after`` (exclusive), at most ``count``."""
    d = redis.call("XRANGE", stream, f"({after}" if after != "0-0" else "-", "+", "COUNT", count)
    return d.addCallback(parse_entries)


#: KEYS: build stream, live stream. ARGV: maxlen, live maxlen, keep seconds, image key, then 4 per entry.
_APPEND = Script("""
local last = ''
for i = 5, #ARGV, 4 do
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'kind', ARGV[i], 't', ARGV[i + 1],
                    'step', ARGV[i + 2], 'text', ARGV[i + 3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', ARGV[i], 't', ARGV[i + 1],
             'step', ARGV[i + 2], 'text', ARGV[i + 3], 'key', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return last
""")


class _Queue:
    """One build's entries waiting to be written."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, str, str, str]] = []
        self.writing: Deferred[None] | None = None
        self.dropped = 0


class RedisLogSink:
    """Writes every build's lines, stages, start and end to its Redis stream (see the module docstring)."""

    def __init__(self, redis: Redis, *, clock: IReactorTime | None = None, maxlen: int = MAXLEN,
                 live_maxlen: int = LIVE_MAXLEN, keep: float = KEEP_SECONDS,
                 max_pending: int = MAX_PENDING) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.redis = redis
        self.clock: IReactorTime = clock  # type: ignore[assignment]
        self.maxlen = maxlen
        self.live_maxlen = live_maxlen
        self.keep = max(1, int(keep))
        self.max_pending = max_pending
        self._queues: dict[str, _Queue] = {}

    # -- LogSink ------------------------------------------------------------------------------------
    def line(self, image_key: str, step: str, text: str) -> None:
        self._add(image_key, "line", step, text)

    def status(self, image_key: str, stage: BuildStage) -> None:
        self._add(image_key, "status", "status", stage.value)

    def begin(self, image_key: str, node: str) -> None:
        self._add(image_key, "start", "asud", node)

    def end(self, image_key: str, error: str | None) -> None:
        self._add(image_key, "end", "end", end_text(error))

    # -- writing ------------------------------------------------------------------------------------
    def flushed(self, image_key: str) -> Deferred[None]:
        """Fires once everything given so far for ``image_key`` was written (or given up)."""
        queue = self._queues.get(image_key)
        if queue is None or queue.writing is None:
            return succeed(None)
        done: Deferred[None] = Deferred()
        queue.writing.addBoth(lambda result: (done.callback(None), result)[1])
        return done

    def _add(self, image_key: str, kind: str, step: str, text: str) -> None:
        queue = self._queues.setdefault(image_key, _Queue())
        if kind == "line" and len(queue.pending) >= self.max_pending:
            queue.dropped += 1
            return
        if queue.dropped:
            marker = f"[{queue.dropped} lines dropped: Redis away]"
            queue.pending.append(("line", self._now(), "asud", marker))
            queue.dropped = 0
        queue.pending.append((kind, self._now(), step, text))
        if queue.writing is None:
            writing = Deferred.fromCoroutine(self._write(image_key, queue))
            if not writing.called:
                queue.writing = writing

    def _now(self) -> str:
        return f"{self.clock.seconds():.3f}"

    async def _write(self, image_key: str, queue: _Queue) -> None:
        try:
            while queue.pending:
                batch, queue.pending = queue.pending[:BATCH], queue.pending[BATCH:]
                args: list[str | int] = [self.maxlen, self.live_maxlen, self.keep, image_key]
                for entry in batch:
                    args.extend(entry)
                try:
                    await self.redis.script(_APPEND, [log_key(image_key), LIVE_KEY], args)
                except Exception as error:
                    log.warn("build {key}: {count} log entries not written to Redis: {error}",
                             key=image_key, count=len(batch), error=error)
        finally:
            queue.writing = None
            if self._queues.get(image_key) is queue:
                del self._queues[image_key]


def entries_text(entries: Sequence[LogEntry], *, step: str | None = None) -> tuple[str, str | None]:
    """Entries as ``build.log`` reads (a ``==> <step>`` header when the step changes, ``==> stage: …``
    lines); the text and the step it ended in (pass it back for the next entries)."""
    out: list[str] = []
    for entry in entries:
        if entry.kind == "line":
            if entry.step != step:
                step = entry.step
                out.append(f"==> {step}\n")
            out.append(f"{entry.text}\n")
        elif entry.kind == "status":
            out.append(f"==> stage: {entry.text}\n")
            step = None
    return "".join(out), step
