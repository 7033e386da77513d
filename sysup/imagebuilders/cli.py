"""``sysup fetch-imagebuilder``: warm the ImageBuilder cache by hand, with progress bars.

Workers fetch ImageBuilders on demand; an operator can fetch one ahead of the first build (a new release,
a fresh worker machine) and see the download, verification and unpacking as they happen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``sysup fetch-imagebuilder`` to the top-level command."""
    app.command("fetch-imagebuilder")(fetch_imagebuilder)


def fetch_imagebuilder(
    version: Annotated[str, typer.Argument(help="Release, e.g. 24.10.5, or SNAPSHOT.")],
    target: Annotated[str, typer.Argument(help="Target/subtarget, e.g. ath79/generic.")],
    distro: Annotated[str, typer.Option(help="Distribution.")] = "openwrt",
    config: Annotated[Path | None, typer.Option("--config", help="Settings file.")] = None,
) -> None:
    """Download, verify (usign + sha256) and unpack one ImageBuilder into the cache."""
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

    from asud.errors import AsudError
    from asud.upstream.usign import parse_public_key
    from sysup.catalog.queries import Catalog
    from sysup.config import load_settings
    from sysup.database import create_engine_for, session_factory
    from sysup.imagebuilders.cache import ImageBuilderCache
    from sysup.upstream.fetch import Fetcher

    settings = load_settings(config)
    console = Console(stderr=True)
    distro_settings = settings.distros.get(distro.lower())
    if distro_settings is None:
        raise typer.BadParameter(f"unknown distribution {distro!r}", param_hint="--distro")
    engine = create_engine_for(settings.resolved_database_url)
    try:
        known = Catalog(session_factory(engine), settings.distros).version(distro.lower(), version)
    finally:
        engine.dispose()
    if known is None:
        console.print(f"[red]{distro} {version} is not in the catalog; run `sysup sync` first.[/red]")
        raise typer.Exit(1)
    keys = [parse_public_key(text) for text in distro_settings.public_keys]
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    with (
        Fetcher(timeout=settings.fetch_timeout, retries=settings.fetch_retries) as fetcher,
        Progress(*columns, console=console) as progress,
    ):
        task = progress.add_task(f"checking {version} {target}", total=None)

        def on_bytes(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        def on_stage(stage: str) -> None:
            label = {"download": "downloading", "unpack": "unpacking"}.get(stage, stage)
            progress.update(task, description=f"{label} {version} {target}")

        cache = ImageBuilderCache(settings.ib_cache_dir, fetcher, settings.ib_cache_max_bytes)
        try:
            path = cache.ensure(
                distro_settings.upstream_url, known.path, target, keys, progress=on_bytes, stage=on_stage
            )
        except AsudError as error:
            console.print(f"[red]{error.detail}[/red]")
            raise typer.Exit(1) from error
    typer.echo(str(path))
