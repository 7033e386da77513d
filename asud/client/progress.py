"""The Rich display of ``asud request``: one status line while the build waits, a bar per download."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)


def describe_status(answer: dict[str, Any]) -> str:
    """``queued (position 3)`` or ``building: building_image``, from a 202 answer."""
    if answer.get("detail") == "queued" or "queue_position" in answer:
        position = answer.get("queue_position")
        return f"queued (position {position})" if position is not None else "queued"
    return f"building: {answer.get('imagebuilder_status') or answer.get('detail') or 'started'}"


class BuildProgress:
    """Context manager whose ``on_status``/``on_progress`` fit :func:`asud.client.request_build`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._build = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._downloads = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
        )
        self._build_task: TaskID | None = None
        self._download_tasks: dict[str, TaskID] = {}
        self._last = ""

    def __enter__(self) -> BuildProgress:
        self._build.start()
        self._build_task = self._build.add_task("submitted", total=None)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._build.stop()
        self._downloads.stop()

    def on_status(self, answer: dict[str, Any], elapsed: float) -> None:
        text = describe_status(answer)
        if self._build_task is not None:
            self._build.update(self._build_task, description=text)
        if text != self._last:
            self.console.log(f"[{elapsed:5.1f}s] {text}")
            self._last = text

    def on_progress(self, name: str, done: int, total: int | None) -> None:
        if name not in self._download_tasks:
            if not self._download_tasks:
                self._build.stop()
                self._downloads.start()
            self._download_tasks[name] = self._downloads.add_task(name, total=total)
        self._downloads.update(self._download_tasks[name], completed=done, total=total)
