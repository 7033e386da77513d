"""Catalog sync at real scale (``demo-upstream --scale real``): cold sync, peak RSS, unchanged re-sync.

The tree is generated (not timed in the figure), served by ``sysup demo-upstream serve`` in its own process,
and synced into a fresh database by ``bench.sync_driver`` (a process of its own, so its peak RSS is the
sync's). The second sync finds nothing changed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from asud.demo.generator import generate_tree
from bench.context import Context
from bench.machine import loadavg
from bench.processes import Finished, run_measured
from bench.results import Figure
from bench.world import upstream_server
from sysup.demo_upstream.demo import write_demo_config

#: Targets of the issue.
MAX_COLD_SECONDS = 20.0
MAX_RSS_MB = 300.0
MAX_RESYNC_SECONDS = 1.0


@dataclass(frozen=True)
class SyncRun:
    """What ``bench.sync_driver`` printed for one distribution."""

    distro: str
    seconds: float
    requests: int
    not_modified: int
    bytes: int
    targets: int
    profiles: int
    packages: int
    errors: list[str]


def _sync(config: Path, log: Path) -> tuple[Finished, SyncRun]:
    finished = run_measured(
        [sys.executable, "-m", "bench.sync_driver"], log=log, env={"SYSUP_CONFIG": str(config)}, timeout=600
    )
    lines = log.read_text(encoding="utf-8").strip().splitlines()
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"sync failed ({finished.returncode}); see {log}")
    return finished, SyncRun(**json.loads(lines[-1])[0])


def run(context: Context) -> Figure:
    scale = context.mode.catalog_scale
    figure = Figure(
        f"catalog sync ({scale} scale)",
        "fresh database; `bench.sync_driver` (what `sysup sync` does) as its own process: sync time measured "
        "around `sync_distro`, peak RSS from the process's rusage; then the same again with nothing changed.",
        f"cold < {MAX_COLD_SECONDS:.0f} s, RSS < {MAX_RSS_MB:.0f} MB, "
        f"unchanged re-sync < {MAX_RESYNC_SECONDS:.0f} s",
    )
    work = context.world.work / f"catalog-{scale}"
    started = time.perf_counter()
    tree = generate_tree(work / "upstream", seed=1, scale=scale, with_imagebuilders=False)
    figure.details.append(f"tree generated in {time.perf_counter() - started:.1f} s (not part of the figure)")
    logs = context.world.logs
    with upstream_server(tree.root, logs) as upstream:
        (work / "sysup").mkdir(parents=True, exist_ok=True)
        config = write_demo_config(work / "sysup", upstream.url, tree.public_key_text, "none")
        figure.details.append(f"cold: load average before {loadavg()}")
        cold, cold_report = _sync(config, logs / f"sync-{scale}-cold.log")
        figure.details.append(f"warm: load average before {loadavg()}")
        warm, warm_report = _sync(config, logs / f"sync-{scale}-warm.log")
    cold_seconds, warm_seconds = cold_report.seconds, warm_report.seconds
    rss = max(cold.peak_rss_mb, warm.peak_rss_mb)
    figure.value = f"cold {cold_seconds:.1f} s, RSS {rss:.0f} MB, re-sync {warm_seconds:.2f} s"
    figure.met = (
        cold_seconds < MAX_COLD_SECONDS
        and rss < MAX_RSS_MB
        and warm_seconds < MAX_RESYNC_SECONDS
        and not cold_report.errors
        and not warm_report.errors
    )
    for label, finished, report in (("cold", cold, cold_report), ("re-sync", warm, warm_report)):
        figure.details.append(
            f"{label}: sync {report.seconds:.2f} s (process {finished.seconds:.2f} s, peak RSS "
            f"{finished.peak_rss_mb:.0f} MB); {report.requests} requests, {report.not_modified} x 304, "
            f"{report.bytes / 1e6:.1f} MB; {report.targets} targets, {report.profiles} profiles, "
            f"{report.packages} packages written; errors {report.errors}"
        )
    return figure
