"""Build overhead with a warm ImageBuilder: the daemon's POST→200 against a bare ``make image`` by hand.

For each run a new package selection (so a real build), first through the daemon, then by hand: a copy
of the same cached ImageBuilder (``cp -a``, not timed), ``make image PROFILE=… PACKAGES=…`` timed, with
the ImageBuilder's own repositories (the demo upstream on 127.0.0.1) and no sandbox.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.client import Http, post_and_wait, request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.machine import loadavg
from bench.results import Figure, median

#: Target of the issue.
MAX_RATIO = 1.10


def make_image_by_hand(ib_dir: Path, packages: list[str], scratch: Path) -> float:
    """Seconds of ``make image`` in a private writable copy of ``ib_dir``."""
    workspace = scratch / "ib"
    subprocess.run(["cp", "-a", str(ib_dir), str(workspace)], check=True)
    subprocess.run(["chmod", "-R", "u+w", str(workspace)], check=True)
    argv = [
        "make",
        "image",
        f"PROFILE={PROFILE}",
        f"PACKAGES={' '.join(packages)}",
        f"BIN_DIR={scratch / 'bin'}",
    ]
    started = time.perf_counter()
    run = subprocess.run(argv, cwd=workspace, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"make image failed: {run.stderr[-2000:] or run.stdout[-2000:]}")
    shutil.rmtree(workspace, ignore_errors=True)
    return seconds


def run(context: Context) -> Figure:
    runs = context.mode.overhead_runs
    figure = Figure(
        "build overhead, warm ImageBuilder",
        f"{runs} runs; each: a new selection of two add-on packages POSTed and polled every 20 ms until 200 "
        "(daemon: validation, Redis queue, hard-linked workspace, verified indexes, `make info`, "
        "`make manifest`, package prefetch, `make image` in bwrap, store), then the ceiling: `make image` "
        "of the same ImageBuilder and packages by hand in a plain copy (its packages come from the demo "
        "upstream on 127.0.0.1, as the ImageBuilder's own repositories say; the daemon's come from its warm, "
        "verified package cache); ratio of the medians.",
        f"≤ {MAX_RATIO:.2f} x bare `make image`",
    )
    if context.finished_hash is None:
        figure.value = "skipped: the ImageBuilder is not cached (cold build failed)"
        figure.met = False
        return figure
    ib_dir = context.world.imagebuilder_dir(VERSION, TARGET)
    served: list[float] = []
    by_hand: list[float] = []
    with Http(context.daemon.url) as client:
        for number in range(runs):
            packages = context.fresh_packages()
            figure.details.append(f"run {number + 1} ({' '.join(packages)}): load average {loadavg()}")
            waited = post_and_wait(client, request_body(VERSION, TARGET, PROFILE, packages, "bench/overhead"))
            if waited.status != 200:
                raise RuntimeError(f"build failed: {waited.body.get('detail')}")
            served.append(waited.seconds)
            with tempfile.TemporaryDirectory(prefix="bench-make-", dir=context.world.work) as scratch:
                by_hand.append(make_image_by_hand(ib_dir, packages, Path(scratch)))
            figure.details.append(
                f"run {number + 1}: daemon {served[-1]:.2f} s, make image {by_hand[-1]:.2f} s, "
                f"ratio {served[-1] / by_hand[-1]:.2f}"
            )
    ratio = median(served) / median(by_hand)
    figure.value = f"{ratio:.2f} x bare ({median(served):.2f} s POST→200)"
    figure.ceiling = f"bare `make image` {median(by_hand):.2f} s"
    figure.met = ratio <= MAX_RATIO
    return figure
