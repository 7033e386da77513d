"""``sysup sync``: migrate the database, then bring the catalog up to date with each distribution."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sysup.catalog.sync import SyncReport, sync_distro
from sysup.config import load_settings
from sysup.database import create_engine_for, session_factory
from sysup.database.migrate import upgrade_database
from sysup.upstream.fetch import Fetcher


def sync(
    distro: str | None = typer.Option(None, "--distro", help="Sync only this distribution."),
) -> None:
    """Read every configured distribution's download server into the catalog (conditional requests)."""
    settings = load_settings()
    names = [distro.lower()] if distro else list(settings.distros)
    unknown = [name for name in names if name not in settings.distros]
    if unknown:
        raise typer.BadParameter(f"unknown distribution {unknown[0]!r}", param_hint="--distro")
    url = settings.resolved_database_url
    upgrade_database(url)
    engine = create_engine_for(url)
    console = Console(stderr=True)
    reports: list[SyncReport] = []
    try:
        factory = session_factory(engine)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with (
            Fetcher(timeout=settings.fetch_timeout, retries=settings.fetch_retries) as fetcher,
            Progress(*columns, console=console, transient=True) as progress,
        ):
            for name in names:
                task = progress.add_task(name, total=None)

                def advance(label: str, done: int, total: int, task: int = task) -> None:
                    progress.update(task, description=label, completed=done, total=total)

                reports.append(sync_distro(factory, name, settings.distros[name], fetcher, progress=advance))
    finally:
        engine.dispose()
    _print_reports(console, reports)
    if any(report.errors for report in reports):
        raise typer.Exit(1)


def _print_reports(console: Console, reports: list[SyncReport]) -> None:
    table = Table(
        "distro", "requests", "304", "MB", "versions", "targets", "updated", "profiles", "packages", "errors"
    )
    for report in reports:
        table.add_row(
            report.distro,
            str(report.requests),
            str(report.not_modified),
            f"{report.bytes / 1e6:.1f}",
            str(report.versions),
            str(report.targets),
            str(report.targets_updated),
            str(report.profiles),
            str(report.packages),
            str(len(report.errors)),
        )
    console.print(table)
    for report in reports:
        for error in report.errors:
            console.print(f"[red]{report.distro}[/red]: {error}", markup=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``sysup sync`` to the top-level command."""
    app.command("sync")(sync)
