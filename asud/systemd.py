"""The sd_notify protocol on the reactor: readiness, status, stop and watchdog datagrams for systemd.

systemd (``Type=notify``) hands a service the address of a datagram socket in ``$NOTIFY_SOCKET`` (a path,
or an abstract name written with a leading ``@``) and reads ``KEY=value`` lines from each datagram sent
there. asud sends:

* ``STATUS=starting: <part>`` as each part of the service tree starts;
* ``READY=1`` once every part has started (``AsudService.started``): the catalog is loaded and the HTTP
  listeners listen, so ``systemctl start`` returns when the API answers;
* ``STATUS=<n> builds running, <m> queued`` whenever those numbers change: at once when a build starts or
  ends here, and checked once a second (the queue);
* ``STOPPING=1`` (with a status line) as soon as the service starts stopping;
* ``WATCHDOG=1`` every ``$WATCHDOG_USEC / 2`` from a ``LoopingCall``: a reactor that stops turning stops
  the pings, and systemd (``WatchdogSec=``) kills and restarts the daemon.

A datagram is one non-blocking ``sendto``; if systemd's queue is full or the socket is gone the message is
dropped (logged once), as ``sd_notify(3)`` does. No extra dependency.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["STATUS_INTERVAL", "Notifier", "SystemdNotify", "notify_address", "watchdog_interval"]

log = Logger()

#: Seconds between two checks of the build counts (a STATUS line is sent only when they changed).
STATUS_INTERVAL = 1.0


def notify_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The socket address of ``$NOTIFY_SOCKET`` for ``socket.sendto`` (``@name`` → abstract ``\\0name``);
    ``None`` when systemd did not ask for notifications."""
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return None
    return "\0" + address[1:] if address.startswith("@") else address


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or ``None`` when no watchdog
    is asked for this process (``$WATCHDOG_PID``, when set, names the process that must ping)."""
    environ = os.environ if environ is None else environ
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(os.getpid() if pid is None else pid):
        return None
    return usec / 2_000_000 if usec > 0 else None


class Notifier:
    """Sends ``KEY=value`` lines as one datagram each to systemd's notification socket."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._socket.setblocking(False)
        self._warned = False

    def send(self, **fields: str | int) -> bool:
        """``send(READY=1, STATUS="…")``; ``False`` when the datagram could not be sent (dropped)."""
        text = "".join(f"{key}={str(value).replace(chr(10), ' ')}\n" for key, value in fields.items())
        try:
            self._socket.sendto(text.encode("utf-8"), self.address)
        except OSError as error:
            if not self._warned:
                self._warned = True
                log.warn("systemd notification not sent to {address!r}: {error}", address=self.address,
                         error=error)
            return False
        return True

    def close(self) -> None:
        self._socket.close()


class SystemdNotify(Service):
    """The first part of the service tree when ``$NOTIFY_SOCKET`` is set (see the module docstring).

    ``pool`` (``BuildPool`` or ``None``) and ``records`` (``BuildRecords``) give the build counts."""

    name = "systemd-notify"

    def __init__(self, notifier: Notifier, *, reactor: Any, pool: Any = None, records: Any = None,
                 watchdog: float | None = None, status_interval: float = STATUS_INTERVAL) -> None:
        self.notifier = notifier
        self.reactor = reactor
        self.pool = pool
        self.records = records
        self.watchdog = watchdog
        self.status_interval = status_interval
        self._pings: LoopingCall | None = None
        self._status: LoopingCall | None = None
        self._last: tuple[int, int] | None = None
        self._stopping = False

    @classmethod
    def from_environment(cls, *, reactor: Any, pool: Any = None, records: Any = None,
                         environ: Mapping[str, str] | None = None) -> SystemdNotify | None:
        """The notifier systemd asked for, or ``None`` outside a ``Type=notify`` unit."""
        address = notify_address(environ)
        if address is None:
            return None
        return cls(Notifier(address), reactor=reactor, pool=pool, records=records,
                   watchdog=watchdog_interval(environ))

    # -- hooks of AsudService --------------------------------------------------------------------------

    def watch(self, service: Any) -> None:
        """Follow ``service`` (an ``AsudService``): its parts starting, ``started`` and its stop."""
        service.phase_observers.append(self.phase_starting)
        service.stop_observers.append(self.stopping)
        service.started.addCallbacks(self.ready, self.failed)

    def phase_starting(self, name: str) -> None:
        if not self._stopping:
            self.notifier.send(STATUS=f"starting: {name}")

    def ready(self, result: object) -> object:
        if self._stopping or not self.running:
            return result
        self.notifier.send(READY=1, STATUS="ready")
        changed = getattr(self.pool, "changed", None)
        if changed is not None:
            changed.append(self._report)  # a build that starts and ends within a second is said too
        self._status = LoopingCall(self._report)
        self._status.clock = self.reactor
        self._status.start(self.status_interval, now=True).addErrback(
            lambda failure: log.failure("systemd status loop", failure))
        return result

    def failed(self, failure: Failure) -> Failure:
        self.notifier.send(STATUS=f"failed to start: {failure.getErrorMessage()}")
        return failure

    def stopping(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._stop_status()
        running = len(getattr(self.pool, "builds", ()) or ())
        detail = f", handing {running} running build(s) back to the queue" if running else ""
        self.notifier.send(STOPPING=1, STATUS=f"stopping{detail}")

    # -- service ---------------------------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self._stopping = False
        if self.watchdog is not None:
            self._pings = LoopingCall(self.notifier.send, WATCHDOG=1)
            self._pings.clock = self.reactor
            self._pings.start(self.watchdog, now=True)

    def stopService(self) -> Deferred[None]:
        """Runs last (this part starts first): the watchdog pings go on while the others stop."""
        Service.stopService(self)
        self.stopping()
        if self._pings is not None and self._pings.running:
            self._pings.stop()
        self._pings = None
        self.notifier.close()
        return succeed(None)

    # -- build counts ------------------------------------------------------------------------------------

    def _stop_status(self) -> None:
        if self._status is not None and self._status.running:
            self._status.stop()
        self._status = None

    def _report(self) -> Deferred[None] | None:
        running = len(getattr(self.pool, "builds", ()) or ())
        if self.records is None:
            self._send_counts(running, 0)
            return None

        def counted(queued: int) -> None:
            self._send_counts(running, queued)

        def unknown(failure: Failure) -> None:  # Redis away: say nothing new; asked again in a second
            log.debug("systemd status: queue length unknown: {error}", error=failure.getErrorMessage())

        return self.records.queue_length().addCallbacks(counted, unknown)

    def _send_counts(self, running: int, queued: int) -> None:
        if self._stopping or (running, queued) == self._last:
            return
        self._last = (running, queued)
        builds = "1 build" if running == 1 else f"{running} builds"
        self.notifier.send(STATUS=f"{builds} running, {queued} queued")
