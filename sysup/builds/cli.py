"""``sysup worker`` (run builds) and ``sysup purge HASH`` (drop a cached result so it is rebuilt)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sysup.config import load_settings


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        workers: Annotated[int | None, typer.Option("--workers", "-w", help="Worker threads.")] = None,
        config: Annotated[Path | None, typer.Option("--config", help="Settings file.")] = None,
    ) -> None:
        """Run the build queue consumer (SqliteHuey or RedisHuey, from the settings)."""
        from sysup.builds.queue import LeaseReaper
        from sysup.builds.runtime import IDLE_POLL_MAX_SECONDS, create_build_queue, reaper_interval
        from sysup.database import create_engine_for, session_factory

        settings = load_settings(config)
        sessions = session_factory(create_engine_for(settings.resolved_database_url))
        queue = create_build_queue(settings, sessions)
        consumer = queue.huey.create_consumer(
            workers=max(1, workers or settings.workers), worker_type="thread", periodic=True,
            max_delay=IDLE_POLL_MAX_SECONDS,
        )
        reaper = LeaseReaper(queue, reaper_interval(settings))
        reaper.start()
        try:
            consumer.run()
        finally:
            reaper.stop()

    @app.command()
    def purge(
        request_hash: Annotated[str, typer.Argument(help="The request hash whose result to drop.")],
        config: Annotated[Path | None, typer.Option("--config", help="Settings file.")] = None,
    ) -> None:
        """Expire the cached result (e.g. a failure) of REQUEST_HASH; the next request rebuilds it."""
        from sysup.builds.service import BuildService
        from sysup.database import create_engine_for, session_factory

        settings = load_settings(config)
        sessions = session_factory(create_engine_for(settings.resolved_database_url))
        service = BuildService.from_settings(sessions, lambda _build_id: None, settings)
        if service.purge(request_hash):
            typer.echo(f"purged {request_hash}")
        else:
            typer.echo(f"nothing to purge for {request_hash}", err=True)
            raise typer.Exit(1)
