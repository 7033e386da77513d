"""Log lines for journald: no timestamp of our own (journald stamps every line) and a ``<N>`` priority.

``twist --log-format=text`` starts each line with an ISO timestamp; under systemd, journald adds its own,
so ``journalctl`` would show two. When stdout *is* the journal (systemd sets ``$JOURNAL_STREAM`` to the
``device:inode`` of that stream), ``asud.tap`` swaps twist's text observer for :func:`journal_observer`:
each line is ``<6>[asud.service#info] asud started`` — journald reads the ``<N>`` prefix as the syslog
priority (``SyslogLevelPrefix=yes``, the default), so ``journalctl -p warning`` shows only problems.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

from twisted.logger import FileLogObserver, LogLevel, formatEventAsClassicLogText

__all__ = ["PRIORITIES", "format_for_journal", "journal_observer", "writes_to_journal"]

#: syslog priorities of Twisted's log levels.
PRIORITIES = {LogLevel.debug: 7, LogLevel.info: 6, LogLevel.warn: 4, LogLevel.error: 3, LogLevel.critical: 2}


def writes_to_journal(stream: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is the journal stream systemd connected (``$JOURNAL_STREAM`` = ``dev:inode``)."""
    environ = os.environ if environ is None else environ
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        status = os.fstat(stream.fileno())
        return (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (AttributeError, OSError, ValueError):
        return False


def format_for_journal(event: Mapping[str, Any]) -> str | None:
    """One event as ``<N>[namespace#level] text``; each further line (a traceback) with the same prefix."""
    text = formatEventAsClassicLogText(dict(event), formatTime=lambda _: "")
    if text is None:
        return None
    priority = PRIORITIES.get(event.get("log_level"), 6)  # type: ignore[arg-type]
    lines = text.lstrip(" ").rstrip("\n").split("\n")
    return "".join(f"<{priority}>{line.lstrip(chr(9))}\n" if index else f"<{priority}>{line}\n"
                   for index, line in enumerate(lines))


def journal_observer(out: IO[str]) -> FileLogObserver:
    """A file observer writing :func:`format_for_journal` lines (a ``fileLogObserverFactory`` for twist)."""
    return FileLogObserver(out, format_for_journal)
