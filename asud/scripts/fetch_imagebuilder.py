"""``asud fetch-imagebuilder VERSION TARGET``: warm the ImageBuilder cache by hand, with progress bars.

The build pool fetches ImageBuilders on demand; an operator can fetch one ahead of the first build (a new
release, a fresh machine) and watch the download, the verification and the unpacking. Prints the
unpacked directory on stdout.
"""

from __future__ import annotations

from typing import Any

from asud.scripts.command import Command, CommandFailed

__all__ = ["FetchImageBuilderOptions"]


class FetchImageBuilderOptions(Command):
    """``asud fetch-imagebuilder VERSION TARGET [--distro NAME]``."""

    synopsis = "[--config FILE] [--distro NAME] VERSION TARGET"
    longdesc = (
        "Download, verify (usign + sha256) and unpack the ImageBuilder of VERSION (e.g. 24.10.5 or "
        "SNAPSHOT) and TARGET (e.g. ath79/generic) into the cache; prints its directory."
    )
    optParameters = [
        *Command.optParameters,
        ["distro", None, "openwrt", "distribution"],
    ]

    def parseArgs(self, version: str, target: str) -> None:
        self["version"] = version
        self["target"] = target

    async def run(self, reactor: Any) -> int:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        from asud import __version__
        from asud.build.imagebuilders import ImageBuilderCache
        from asud.catalog import load_catalog
        from asud.errors import AsudError
        from asud.upstream.fetch import Fetcher

        config = self.load_config()
        distro = self["distro"].lower()
        version, target = self["version"], self["target"]
        if distro not in config.distros:
            raise CommandFailed(
                f"unknown distribution {self['distro']!r} (configured: {', '.join(sorted(config.distros))})"
            )
        console = Console(stderr=True)
        fetcher = Fetcher(
            timeout=config.upstream.fetch_timeout,
            retries=config.upstream.fetch_retries,
            max_concurrent=config.upstream.max_concurrent,
            cache_dir=config.upstream_cache_dir,
            reactor=reactor,
            user_agent=f"asud/{__version__}",
        )
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
        )
        try:
            with console.status(f"reading the {distro} catalog…"):
                catalog, _report = await load_catalog(config, fetcher)
            if catalog.version(distro, version) is None:
                raise CommandFailed(
                    f"{distro} {version} is not in the catalog "
                    f"(see `asud sync` for what the download server offers)"
                )
            if catalog.target(distro, version, target) is None:
                raise CommandFailed(f"{distro} {version} has no target {target!r}")
            cache = ImageBuilderCache.from_config(config, fetcher, reactor=reactor)
            with Progress(*columns, console=console) as progress:
                task = progress.add_task(f"checking {version} {target}", total=None)

                def on_bytes(done: int, total: int | None) -> None:
                    progress.update(task, completed=done, total=total)

                def on_stage(stage: str) -> None:
                    label = {"download": "downloading", "unpack": "unpacking"}.get(stage, stage)
                    progress.update(task, description=f"{label} {version} {target}")

                try:
                    path = await cache.ensure(
                        catalog, distro, version, target, progress=on_bytes, stage=on_stage
                    )
                except AsudError as error:
                    raise CommandFailed(error.detail) from error
        finally:
            await fetcher.close()
        print(path)
        return 0
