"""Where the daemon spends its time under load: py-spy samples, summarised as text for results.md.

Only with ``python -m bench --profile`` and when py-spy is installed (it is not a dependency): sampling
costs CPU on a two-core machine, so the profile is taken in an extra load run after the measured ones and
never changes a figure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: How many functions each summary lists.
TOP = 12


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarise(raw: str, top: int = TOP) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """Top functions by own time, and asud's own functions by inclusive time (shares of all samples), from
    py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "(asud/" in frame:
                inclusive[frame] += count
    if not total:
        return [], []

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, count / total) for frame, count in counter.most_common(top)]

    return shares(own), shares(inclusive)


def profiled(pid: int, load: Callable[[], Any], seconds: float = 10.0) -> list[str]:
    """Run ``load()`` while py-spy samples process ``pid``; markdown lines with the top functions."""
    py_spy = _py_spy()
    if py_spy is None:
        return ["profile: py-spy is not installed (`pip install py-spy`)"]
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        output = Path(scratch) / "profile.txt"
        argv = [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(round(seconds)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(output),
        ]
        sampler = threading.Thread(
            target=subprocess.run,
            args=(argv,),
            kwargs={"capture_output": True, "timeout": seconds + 60, "check": False},
        )
        sampler.start()
        load()
        sampler.join()
        raw = output.read_text(encoding="utf-8") if output.exists() else ""
    own, inclusive = summarise(raw)
    if not own:
        return ["profile: py-spy recorded nothing (it needs ptrace permission on the daemon process)"]
    lines = ["profile (py-spy, extra run) — own time:"]
    lines += [f"  {share:5.1%} `{frame}`" for frame, share in own]
    lines.append("profile — inclusive time of asud's own functions:")
    lines += [f"  {share:5.1%} `{frame}`" for frame, share in inclusive]
    return lines
