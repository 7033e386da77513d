"""``asud fetch-imagebuilder VERSION TARGET``: warm the ImageBuilder cache by hand, with progress bars.

The build pool fetches ImageBuilders on demand; an operator can fetch one ahead of the first build (a new
release, a fresh machine) and watch the download, the verification and the unpacking. Prints the
unpacked directory on stdout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

        from asud import __version__
        from asud.build.imagebuilders import ImageBuilderCache
        from asud.catalog import load_catalog
        from asud.errors import AsudError
        from asud.upstream.fetch import Fetcher
        from asud.upstream.usign import parse_public_key

        config = self.load_config()
        distro = self["distro"].lower()
        version, target = self["version"], self["target"]
        settings = config.distros.get(distro)
        if settings is None:
            known = ", ".join(sorted(config.distros))
            raise CommandFailed(f"unknown distribution {self['distro']!r} (configured: {known})")
        console = Console(stderr=True)
        fetcher = Fetcher(
            timeout=config.upstream.fetch_timeout,
            retries=config.upstream.fetch_retries,
            max_concurrent=config.upstream.max_concurrent,
            cache_dir=config.upstream_cache_dir,
            reactor=reactor,
            user_agent=f"asud/{__version__}",
        )
        try:
            with console.status(f"reading the {distro} catalog…"):
                catalog, _report = await load_catalog(config, fetcher, distros=[distro])
            known_version = catalog.version(distro, version)
            if known_version is None:
                raise CommandFailed(
                    f"{distro} {version} is not in the catalog; `asud sync` shows what the download "
                    "server offers"
                )
            if catalog.target(distro, version, target) is None:
                raise CommandFailed(f"{distro} {version} has no target {target!r}")
            keys = [parse_public_key(text) for text in settings.public_keys]
            cache = ImageBuilderCache(
                config.imagebuilder_dir,
                fetcher,
                config.cache.imagebuilder_max_bytes,
                reactor=reactor,
                kill_grace=config.build.kill_grace,
            )
            try:
                with _progress(console) as (on_bytes, on_stage):
                    on_stage(f"checking {version} {target}")
                    path = await cache.ensure(
                        settings.upstream_url,
                        known_version.path,
                        target,
                        keys,
                        on_bytes,
                        stage=lambda name: on_stage(f"{_STAGES.get(name, name)} {version} {target}"),
                    )
            except AsudError as error:
                raise CommandFailed(error.detail) from error
            finally:
                await cache.close()
        finally:
            await fetcher.close()
        print(path)
        return 0


_STAGES = {"download": "downloading", "unpack": "unpacking", "verify": "verifying"}


@contextmanager
def _progress(console: Any) -> Iterator[tuple[Callable[[int, int | None], None], Callable[[str], None]]]:
    """A Rich bar: ``on_bytes(done, total)`` moves it, ``on_stage(text)`` names what happens."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("", total=None)

        def on_bytes(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        def on_stage(text: str) -> None:
            progress.update(task, description=text)

        yield on_bytes, on_stage
