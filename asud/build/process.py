"""One child process's whole life on the reactor: spawn, lines, limits, timeout, kill, result.

:class:`ChildProcess` is the only place that owns a child (``reactor.spawnProcess``). It

* splits stdout and stderr into whole lines (a ``\\r``-progress line collapses to its last state) and
  hands each line, with the step's name, to ``on_line`` — the build's one place for lines;
* keeps the text as sysup kept it (stdout and stderr apart, decoded as UTF-8 with replacements), capped by
  ``output_limit`` bytes for both together: past the cap the bytes are dropped and the child is stopped;
* stops the child after ``timeout`` seconds of wall clock: ``TERM``, then ``KILL`` after ``kill_grace``
  seconds; every timer is cancelled in one place (:meth:`ChildProcess._stop_timers`);
* fires :meth:`ChildProcess.start`'s Deferred with a :class:`ProcessResult` once every pipe closed.

**Cancelling** that Deferred stops the child (TERM, then KILL) and the Deferred delivers ``CancelledError``
only once the child is gone (its callbacks are paused until ``processEnded``), so a caller's ``finally``
never removes a workspace under a still-running ``make``.

A process tree goes with its leader only when the leader takes it: builds run under ``bwrap
--die-with-parent --unshare-pid`` (TERM to bwrap ends the whole namespace); a bare run sets
``ProcessSpec.kill_group`` and starts its command in a session of its own (``setsid``), so signals go to
the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import attrs
from twisted.internet import error as internet_error
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IProcessTransport, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

__all__ = ["ChildProcess", "LineCallback", "ProcessResult", "ProcessSpec", "run_process"]

#: ``on_line(step, text)``: one whole output line of a step, without its line end.
LineCallback = Callable[[str, str], None]

#: A line longer than this is handed on in pieces (a child printing megabytes without a newline).
MAX_LINE_BYTES = 64 * 1024


@attrs.frozen
class ProcessSpec:
    """What to run and how: the exact argv, a complete environment, and who runs it."""

    argv: list[str] = attrs.field(converter=list)
    env: dict[str, str] = attrs.field(factory=dict, converter=dict)
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    #: Signal the child's whole process group (the child must lead one, e.g. started through ``setsid``).
    kill_group: bool = False


@attrs.frozen
class ProcessResult:
    """What a child did. ``ok`` is true only for exit 0 within both limits.

    ``returncode`` is the exit status, or ``-N`` when signal ``N`` ended the child (as ``subprocess``
    reports it).
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    output_truncated: bool
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_truncated


class _Lines:
    """Bytes of one stream → whole lines; ``\\r`` rewinds a line (progress bars keep their last state)."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._rest = b""

    def feed(self, data: bytes) -> None:
        buffer = self._rest + data
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            self._line(line)
        # A progress bar rewinds with \r and never ends its line: keep only its last state.
        cut = rest.rfind(b"\r", 0, len(rest) - 1)
        if cut >= 0:
            rest = rest[cut + 1 :]
        while len(rest) > MAX_LINE_BYTES:
            self._line(rest[:MAX_LINE_BYTES])
            rest = rest[MAX_LINE_BYTES:]
        self._rest = rest

    def flush(self) -> None:
        if self._rest:
            rest, self._rest = self._rest, b""
            self._line(rest)

    def _line(self, raw: bytes) -> None:
        raw = raw.rstrip(b"\r")
        if b"\r" in raw:
            raw = raw.rsplit(b"\r", 1)[1]
        self._emit(raw.decode("utf-8", "replace"))


class ChildProcess(ProcessProtocol):
    """Runs one :class:`ProcessSpec` once; see the module docstring. Use :meth:`start` (or
    :func:`run_process`); :meth:`ended` tells when the child is really gone."""

    def __init__(
        self,
        spec: ProcessSpec,
        *,
        reactor: Any,
        timeout: float,
        output_limit: int,
        kill_grace: float,
        step: str = "",
        on_line: LineCallback | None = None,
    ) -> None:
        self.spec = spec
        self.step = step
        self._reactor = reactor
        self._timeout = timeout
        self._output_limit = output_limit
        self._kill_grace = kill_grace
        self._on_line = on_line
        self._buffers = {1: bytearray(), 2: bytearray()}
        self._lines = {1: _Lines(self._emit), 2: _Lines(self._emit)}
        self._total = 0
        self._pid: int | None = None
        self._started_at = 0.0
        self._timed_out = False
        self._truncated = False
        self._stopping = False
        self._finished = False
        self._timeout_call: Any = None
        self._kill_call: Any = None
        self._deferred: Deferred[ProcessResult] | None = None
        self._cancelled = False
        self._waiters: list[Deferred[None]] = []

    # -- the caller's side ----------------------------------------------------------------------

    def start(self) -> Deferred[ProcessResult]:
        """Spawn the child; the Deferred fires with its :class:`ProcessResult` (never for a non-zero exit
        with an error: the caller decides what a result means). Cancelling it stops the child."""
        if self._deferred is not None:
            raise RuntimeError("a ChildProcess runs once")
        self._deferred = Deferred(self._cancel)
        clock = cast(IReactorTime, self._reactor)
        self._started_at = clock.seconds()
        try:
            transport = cast(IReactorProcess, self._reactor).spawnProcess(
                self,
                self.spec.argv[0],
                self.spec.argv,
                env=self.spec.env,
                path=self.spec.cwd,
                uid=self.spec.uid,
                gid=self.spec.gid,
            )
        except OSError as error:
            self._finished = True
            deferred, self._deferred = self._deferred, None
            deferred.errback(Failure(error))
            return deferred
        self._pid = getattr(transport, "pid", None)
        self._timeout_call = clock.callLater(self._timeout, self._on_timeout)
        return self._deferred

    def ended(self) -> Deferred[None]:
        """A new Deferred that fires once the child has ended and every pipe closed (at once if so)."""
        if self._finished:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        return waiter

    def stop(self) -> None:
        """TERM now, KILL after the grace period (idempotent)."""
        if self._finished or self._stopping:
            return
        self._stopping = True
        self._signal("TERM")
        self._kill_call = cast(IReactorTime, self._reactor).callLater(self._kill_grace, self._kill)

    # -- ProcessProtocol ------------------------------------------------------------------------

    def connectionMade(self) -> None:
        transport = cast(IProcessTransport, self.transport)
        transport.closeStdin()
        if self._pid is None:
            self._pid = getattr(transport, "pid", None)

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD not in self._buffers or self._truncated:
            return
        room = self._output_limit - self._total
        if len(data) > room:
            data = data[: max(room, 0)]
            self._truncated = True
        self._total += len(data)
        self._buffers[childFD] += data
        self._lines[childFD].feed(data)
        if self._truncated:
            self.stop()

    def processEnded(self, reason: Failure) -> None:
        self._finished = True
        self._stop_timers()
        for lines in self._lines.values():
            lines.flush()
        value = reason.value
        if isinstance(value, internet_error.ProcessTerminated):
            if value.signal is not None:
                returncode = -int(value.signal)
            else:
                returncode = int(value.exitCode) if value.exitCode is not None else 1
        else:
            returncode = 0
        result = ProcessResult(
            returncode=returncode,
            stdout=self._buffers[1].decode("utf-8", "replace"),
            stderr=self._buffers[2].decode("utf-8", "replace"),
            timed_out=self._timed_out,
            output_truncated=self._truncated,
            duration=cast(IReactorTime, self._reactor).seconds() - self._started_at,
        )
        deferred, self._deferred = self._deferred, None
        waiters, self._waiters = self._waiters, []
        if deferred is not None:
            if self._cancelled:
                deferred.unpause()  # releases the CancelledError the canceller left there
            else:
                deferred.callback(result)
        for waiter in waiters:
            waiter.callback(None)

    # -- internals ------------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if self._on_line is not None:
            self._on_line(self.step, text)

    def _cancel(self, deferred: Deferred[ProcessResult]) -> None:
        # Deferred.cancel() errbacks right after this returns; paused, the CancelledError reaches the
        # callbacks only when processEnded unpauses it, i.e. once the child is gone.
        self._cancelled = True
        deferred.pause()
        self.stop()

    def _on_timeout(self) -> None:
        self._timeout_call = None
        self._timed_out = True
        self.stop()

    def _kill(self) -> None:
        self._kill_call = None
        self._signal("KILL")
        # The leader may be gone while something it started still holds our pipes; stop reading them so
        # processEnded can come (the killed tree has nothing more to say).
        transport = self.transport
        if transport is not None and not self._finished:
            cast(IProcessTransport, transport).loseConnection()

    def _signal(self, name: str) -> None:
        if self.spec.kill_group and self._pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, getattr(signal, f"SIG{name}"))
            return
        transport = self.transport
        if transport is None:
            return
        with contextlib.suppress(internet_error.ProcessExitedAlready, OSError):
            cast(IProcessTransport, transport).signalProcess(name)

    def _stop_timers(self) -> None:
        """The one place every timer of this child is cancelled."""
        for call in (self._timeout_call, self._kill_call):
            if call is not None and call.active():
                call.cancel()
        self._timeout_call = self._kill_call = None


def run_process(
    argv: Sequence[str],
    *,
    reactor: Any,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float,
    output_limit: int,
    kill_grace: float,
    step: str = "",
    on_line: LineCallback | None = None,
) -> Deferred[ProcessResult]:
    """Run a plain helper command (``tar`` for instance) under the same limits; cancellable."""
    spec = ProcessSpec(list(argv), dict(env or {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}), cwd)
    child = ChildProcess(spec, reactor=reactor, timeout=timeout, output_limit=output_limit,
                         kill_grace=kill_grace, step=step, on_line=on_line)
    return child.start()
