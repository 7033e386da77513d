"""Where a build's lines go: one :class:`LogSink` per build, called once per line.

Every output line of every step of a build (``make info``, ``make manifest``, ``make image``, the
pipeline's own notes) goes to ``LogSink.line(image_key, step, text)``, and each stage change to
``LogSink.status(image_key, stage)``. The pipeline always writes through a :class:`FileLogSink` (the
build's ``build.log``, stored beside its images); a caller may add another sink (the live log streamed
through Redis, the pool's stage updates) and the pipeline then writes to both through a :class:`TeeSink`,
so a line still has one place to go.

``build.log`` reads like a terminal session: a ``==> <step>`` header whenever the step changes, the lines
as printed (stdout and stderr in arrival order, ``\\r`` progress collapsed to its last state), and a
``==> stage: <stage>`` line for each stage.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from twisted.logger import Logger

from asud.build.stages import BuildStage

__all__ = ["BUILD_LOG", "BuildLog", "FileLogSink", "LogSink", "TeeSink"]

log = Logger()

#: The log's name in the files store (``/store/<bin_dir>/build.log``).
BUILD_LOG = "build.log"

_IMAGE_KEY = re.compile(r"\A[0-9A-Za-z_-]{1,128}\Z")


class LogSink(Protocol):
    """Receives a build's lines and stages as they happen; must not raise and must not block."""

    def line(self, image_key: str, step: str, text: str) -> None: ...

    def status(self, image_key: str, stage: BuildStage) -> None: ...


@runtime_checkable
class BuildLog(LogSink, Protocol):
    """A sink that also hears when a builder takes a build and how it ended (the live log in Redis);
    the pool tells it, as only the pool knows."""

    def begin(self, image_key: str, node: str) -> None: ...

    def end(self, image_key: str, error: str | None) -> None:
        """``error`` is ``None`` for a build that is done, else the failure's detail."""


class FileLogSink:
    """Appends each build's lines to ``<root>/<image_key>/build.log``.

    :meth:`open` starts a fresh log (a build handed back and started again begins anew), :meth:`close`
    flushes and closes it (the pipeline then stores the file), :meth:`discard` removes it. Lines of a
    build that was not opened are dropped with a warning, never an error.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, IO[str]] = {}
        self._steps: dict[str, str] = {}

    def path(self, image_key: str) -> Path:
        if not _IMAGE_KEY.match(image_key):
            raise ValueError(f"not an image key: {image_key!r}")
        return self.root / image_key / BUILD_LOG

    def open(self, image_key: str) -> Path:
        """Start ``image_key``'s log empty; its path."""
        self.close(image_key)
        path = self.path(image_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._files[image_key] = path.open("w", encoding="utf-8", errors="replace")
        self._steps.pop(image_key, None)
        return path

    def line(self, image_key: str, step: str, text: str) -> None:
        handle = self._files.get(image_key)
        if handle is None:
            log.warn("build {key}: a line after its log was closed: {text}", key=image_key, text=text[:200])
            return
        if self._steps.get(image_key) != step:
            self._steps[image_key] = step
            handle.write(f"==> {step}\n")
        handle.write(f"{text}\n")

    def status(self, image_key: str, stage: BuildStage) -> None:
        handle = self._files.get(image_key)
        if handle is not None:
            handle.write(f"==> stage: {stage.value}\n")
            handle.flush()
            self._steps.pop(image_key, None)

    def close(self, image_key: str) -> None:
        handle = self._files.pop(image_key, None)
        self._steps.pop(image_key, None)
        if handle is not None:
            handle.close()

    def discard(self, image_key: str) -> None:
        """Close and remove the log (a build handed back: its next start writes a new one)."""
        self.close(image_key)
        with contextlib.suppress(OSError):
            path = self.path(image_key)
            path.unlink(missing_ok=True)
            path.parent.rmdir()


class TeeSink:
    """Hands every line and stage to several sinks in order; one failing sink does not stop the others."""

    def __init__(self, *sinks: LogSink) -> None:
        self.sinks = sinks

    def line(self, image_key: str, step: str, text: str) -> None:
        for sink in self.sinks:
            try:
                sink.line(image_key, step, text)
            except Exception:
                log.failure("log sink {sink!r} failed", sink=sink)

    def status(self, image_key: str, stage: BuildStage) -> None:
        for sink in self.sinks:
            try:
                sink.status(image_key, stage)
            except Exception:
                log.failure("log sink {sink!r} failed", sink=sink)
