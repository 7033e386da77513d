"""The same-run ceilings of the throughput figures, and the alternating wrk runs that compare with them.

A ceiling is a bare ``twisted.web`` server (``bench.bare``) in its own process, serving exactly what the
daemon served: the same body bytes with the same headers, or the same file. wrk runs alternate daemon,
ceiling, daemon, ceiling …, so both see the same background load, and the medians are compared.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from bench.client import Answer
from bench.load import WrkRun
from bench.machine import loadavg
from bench.processes import Child, free_port, start_child
from bench.results import median

__all__ = ["Compared", "alternate", "bare_file", "bare_resource"]

#: Headers every server writes for itself; the rest of the daemon's answer is copied into the ceiling.
_OWN_HEADERS = {"date", "server", "content-length", "transfer-encoding", "connection", "keep-alive"}
_ROOT = Path(__file__).resolve().parents[1]


class Bare:
    """A running bare server; ``url`` is its base URL."""

    def __init__(self, child: Child, url: str) -> None:
        self.child = child
        self.url = url

    def __enter__(self) -> Bare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.child.stop()


def _start(args: list[str], log: Path) -> Bare:
    port = free_port()
    child = start_child([sys.executable, "-m", "bench.bare", *args, str(port)], log=log, cwd=_ROOT)
    child.wait_for(re.compile(r"^listening on \d+$", re.M).search, timeout=30, what="bench.bare")
    return Bare(child, f"http://127.0.0.1:{port}")


def bare_resource(answer: Answer, scratch: Path, name: str) -> Bare:
    """A bare ``Resource`` answering every request with ``answer``'s body and headers."""
    body = scratch / f"{name}.body"
    headers = scratch / f"{name}.headers.json"
    body.write_bytes(answer.body)
    kept = {key: value for key, value in answer.headers.items() if key not in _OWN_HEADERS}
    headers.write_text(json.dumps(kept), encoding="utf-8")
    return _start(["resource", str(body), str(headers)], scratch / f"{name}.log")


def bare_file(directory: Path, log: Path) -> Bare:
    """``twisted.web.static.File(directory)`` at the root."""
    return _start(["file", str(directory)], log)


class Compared:
    """The runs of one alternating comparison."""

    def __init__(self) -> None:
        self.ours: list[WrkRun] = []
        self.bare: list[WrkRun] = []

    @property
    def ours_rps(self) -> float:
        return median([run.requests_per_second for run in self.ours])

    @property
    def bare_rps(self) -> float:
        return median([run.requests_per_second for run in self.bare])

    @property
    def ratio(self) -> float:
        return self.ours_rps / self.bare_rps if self.bare_rps else 0.0

    @property
    def ours_bytes(self) -> float:
        return median([run.bytes_per_second for run in self.ours])

    @property
    def bare_bytes(self) -> float:
        return median([run.bytes_per_second for run in self.bare])

    @property
    def bytes_ratio(self) -> float:
        return self.ours_bytes / self.bare_bytes if self.bare_bytes else 0.0

    @property
    def errors(self) -> int:
        return sum(run.socket_errors + run.bad_responses for run in self.ours)


def alternate(
    runs: int, ours: Callable[[], WrkRun], bare: Callable[[], WrkRun], details: list[str], label: str = ""
) -> Compared:
    """``runs`` pairs of wrk runs, daemon first; each run's numbers appended to ``details``."""
    compared = Compared()
    prefix = f"{label} " if label else ""
    for number in range(runs):
        details.append(f"{prefix}run {number + 1}: load average before {loadavg()}")
        compared.ours.append(ours())
        compared.bare.append(bare())
        details.append(f"{prefix}run {number + 1} asud: {compared.ours[-1].describe()}")
        details.append(f"{prefix}run {number + 1} bare: {compared.bare[-1].describe()}")
    return compared
