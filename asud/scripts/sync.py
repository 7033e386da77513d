"""``asud sync``: read every configured distribution's download server, as the daemon does at start, and
say what was found — and what is wrong (a release below ``min_branch`` skipped, an index without a
signature, a version with no packages). Exits 1 when there is a problem.

The daemon keeps its catalog in memory and refreshes it itself; this command is the operator's look at
the same load (it warms the on-disk ETag cache the daemon reads through, too).
"""

from __future__ import annotations

from typing import Any

from asud.scripts.command import Command, CommandFailed

__all__ = ["SyncOptions"]


class SyncOptions(Command):
    """``asud sync [--distro NAME]``."""

    synopsis = "[--config FILE] [--distro NAME]"
    longdesc = (
        "Read every configured distribution's download server into a catalog (conditional requests "
        "through the on-disk cache) and print what was found and every problem; exit 1 on a problem."
    )
    optParameters = [
        *Command.optParameters,
        ["distro", None, None, "sync only this distribution"],
    ]

    async def run(self, reactor: Any) -> int:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from asud import __version__
        from asud.catalog import load_catalog
        from asud.upstream.fetch import Fetcher

        config = self.load_config()
        names = list(config.distros)
        if self["distro"]:
            names = [self["distro"].lower()]
            if names[0] not in config.distros:
                known = ", ".join(sorted(config.distros))
                raise CommandFailed(f"unknown distribution {self['distro']!r} (configured: {known})")
        fetcher = Fetcher(
            timeout=config.upstream.fetch_timeout,
            retries=config.upstream.fetch_retries,
            max_concurrent=config.upstream.max_concurrent,
            cache_dir=config.upstream_cache_dir,
            reactor=reactor,
            user_agent=f"asud/{__version__}",
        )
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("reading", total=None)

                def advance(label: str, done: int, total: int) -> None:
                    progress.update(task, description=label, completed=done, total=total)

                # feeds=True: every package index is read and counted, so a version with 0 packages
                # (an index without its signature, say) shows up here as a problem.
                _catalog, report = await load_catalog(
                    config, fetcher, feeds=True, distros=names, progress=advance
                )
        finally:
            await fetcher.close()
        for line in report.lines():
            print(line)
        return 1 if report.problems else 0
