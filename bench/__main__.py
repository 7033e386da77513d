"""``python -m bench`` (``make bench``): every figure, in one run, written to ``bench/out/results.md``
(ignored; ``bench/results.md`` is the committed reference, updated by hand).

Options: ``--tiny`` (seconds-long loads, demo-scale catalog: the smoke test), ``--only NAME …``,
``--work-dir DIR`` (keep the scratch data; default a fresh temporary directory), ``--out FILE``,
``--profile`` (add a py-spy profile of the daemon to the throughput figures, when py-spy is installed).
The table is printed at the end; the exit status is 1 when a figure missed its target.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    build_overhead,
    catalog,
    cold_build,
    concurrent,
    get_build,
    impossible,
    live_logs,
    post_cache_hit,
    queue_throughput,
    reactor_health,
    store_file,
)
from bench.context import FULL, TINY, Context
from bench.machine import describe
from bench.results import Figure, render, table, write
from bench.world import build_world

#: In the order they run. Later figures use what earlier ones leave in the context (the finished build,
#: the warm ImageBuilder); the queue and reactor figures start daemons of their own on the same data
#: directory, so the main daemon is stopped first (one redis-server per data directory), and the catalog
#: figure has an upstream and a daemon of its own.
ON_MAIN_DAEMON: dict[str, Callable[[Context], Figure]] = {
    "cold_build": cold_build.run,
    "get_build": get_build.run,
    "post_cache_hit": post_cache_hit.run,
    "store_file": store_file.run,
    "impossible": impossible.run,
    "build_overhead": build_overhead.run,
    "concurrent": concurrent.run,
}
AFTER_MAIN_DAEMON: dict[str, Callable[[Context], Figure]] = {
    "queue_throughput": queue_throughput.run,
    "reactor_health": reactor_health.run,
    "catalog": catalog.run,
    "live_logs": live_logs.run,
}
#: The order of the results table (issue 15's).
TABLE_ORDER = (
    "get_build",
    "post_cache_hit",
    "store_file",
    "impossible",
    "build_overhead",
    "cold_build",
    "concurrent",
    "catalog",
    "queue_throughput",
    "live_logs",
    "reactor_health",
)
#: A run writes under the ignored bench/out/; bench/results.md is the reference, updated by hand.
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "results.md"


def _measure(name: str, run: Callable[[Context], Figure], context: Context) -> Figure:
    print(f"bench: {name} …", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        figure = run(context)
    except Exception as error:  # one broken figure must not hide the others
        traceback.print_exc()
        figure = Figure(
            name,
            "(failed before it finished)",
            "-",
            value=f"error: {type(error).__name__}: {str(error)[:300]}",
            met=False,
        )
    figure.seconds = time.monotonic() - started
    print(
        f"bench: {name}: {figure.value} ({figure.verdict}, {figure.seconds:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return figure


def run_suite(work: Path, *, tiny: bool, only: Sequence[str], profile: bool) -> dict[str, Figure]:
    """Set up the world, run the chosen figures, tear everything down; figures by name."""
    wanted = set(only) or set(TABLE_ORDER)
    figures: dict[str, Figure] = {}
    print(f"bench: setting up in {work} …", file=sys.stderr, flush=True)
    world = build_world(work)
    print(
        f"bench: demo tree generated in {world.tree_seconds:.1f} s, served at {world.upstream.url}",
        file=sys.stderr,
        flush=True,
    )
    try:
        daemon = world.start_daemon(workers=1, name="main")
        context = Context(mode=TINY if tiny else FULL, world=world, daemon=daemon, profile=profile)
        if wanted & (set(ON_MAIN_DAEMON) | {"queue_throughput", "reactor_health"}):
            for name, run in ON_MAIN_DAEMON.items():
                # The cold build leaves the finished build (and the warm ImageBuilder) the others use.
                if name in wanted or name == "cold_build":
                    figures[name] = _measure(name, run, context)
        world.stop_daemon(daemon)
        for name, run in AFTER_MAIN_DAEMON.items():
            if name in wanted:
                figures[name] = _measure(name, run, context)
    finally:
        world.close()
    return {name: figures[name] for name in TABLE_ORDER if name in figures and name in wanted}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny loads (smoke test), demo-scale catalog")
    parser.add_argument(
        "--only",
        nargs="*",
        default=[],
        choices=TABLE_ORDER,
        metavar="FIGURE",
        help=f"run only these figures: {', '.join(TABLE_ORDER)}",
    )
    parser.add_argument("--work-dir", type=Path, help="scratch directory to use and keep")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write results.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy profiles of the daemon in the throughput figures (if py-spy is installed)",
    )
    options = parser.parse_args(argv)

    started = time.monotonic()
    header = describe()
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="asud-bench-"))
    if options.work_dir and work.exists():
        shutil.rmtree(work)  # a fresh data directory: the cold build must be cold
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = run_suite(work, tiny=options.tiny, only=options.only, profile=options.profile)
    finally:
        if options.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    mode = "tiny (smoke test: numbers mean nothing)" if options.tiny else "full"
    header = [*header, f"- mode: {mode}; whole run {time.monotonic() - started:.0f} s"]
    write(options.out, render(list(figures.values()), header))
    print("\n".join([*header, "", *table(list(figures.values()))]))
    print(f"bench: wrote {options.out}", file=sys.stderr)
    return 0 if all(figure.met is not False for figure in figures.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
