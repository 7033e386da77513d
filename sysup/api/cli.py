"""``sysup serve``: migrate the database, start the embedded build worker, run the API under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``sysup`` command."""
    app.command()(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Do not build here (run `sysup worker` elsewhere).")
    ] = False,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Embedded build worker threads (default: settings.workers).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Configuration file (default: SYSUP_CONFIG or sysup.toml).")
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(help="Log every request (a reverse proxy in front usually logs them already; off "
                     "saves about a tenth of the time of a cached answer)."),
    ] = True,
) -> None:
    """Serve the HTTP API (and, unless --no-worker, build images in this process)."""
    import uvicorn

    from sysup.api.app import create_app
    from sysup.config import load_settings
    from sysup.database.migrate import upgrade_database

    settings = load_settings(config)
    if workers is not None:
        settings = settings.model_copy(update={"workers": workers})
    upgrade_database(settings.resolved_database_url)

    consumer = None
    if not no_worker:
        from sysup.builds.queue import start_embedded_consumer

        consumer = start_embedded_consumer(settings)
    base = f"http://{host}:{port}"
    typer.echo(f"sysup API         {base}/api/v1/build")
    typer.echo(f"overview          {base}/json/v1/overview.json")
    typer.echo(f"API documentation {base}/docs")
    typer.echo(
        "builds            "
        + ("not here (--no-worker)" if consumer is None else f"{settings.workers} worker(s)")
    )
    try:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            proxy_headers=True,
            log_level="info",
            access_log=access_log,
        )
    finally:
        if consumer is not None:
            consumer.stop()
