"""``sysup demo-upstream``: build a demo download tree, or serve one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

app = typer.Typer(
    help="A synthetic, signed OpenWrt download server for the demo and the tests.", no_args_is_help=True
)


@app.command()
def build(
    directory: Annotated[Path, typer.Argument(help="Where to write the tree (replaced if it is one).")],
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 1,
    base_url: Annotated[
        str, typer.Option(help="URL the tree will be served at (used in IB repositories).")
    ] = ("http://127.0.0.1:8001"),
    scale: Annotated[str, typer.Option(help="demo, or real: real-size metadata without IBs.")] = "demo",
    imagebuilders: Annotated[bool, typer.Option(help="Build the ImageBuilder archives.")] = True,
) -> None:
    """Generate the demo download tree in DIRECTORY."""
    from asud.demo.generator import generate_tree

    if scale not in ("demo", "real"):
        raise typer.BadParameter("scale must be 'demo' or 'real'", param_hint="--scale")
    console = Console()
    started = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)
        info = generate_tree(
            directory,
            seed=seed,
            base_url=base_url,
            scale=scale,  # type: ignore[arg-type]
            with_imagebuilders=imagebuilders,
            progress=lambda text: progress.update(task, description=text),
        )
    files = [path for path in info.root.rglob("*") if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    console.print(
        f"[bold]Demo upstream[/bold] in {info.root} ({len(files)} files, {size / 2**20:.1f} MiB, "
        f"{time.monotonic() - started:.1f} s)"
    )
    console.print(f"signing key {info.fingerprint}: {info.root / 'keys' / (info.fingerprint + '.pub')}")
    for version in info.versions:
        console.print(f"  {version}: {len(info.targets[version])} targets")


@app.command()
def serve(
    directory: Annotated[Path, typer.Argument(help="A tree made by 'build'.", exists=True, file_okay=False)],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
) -> None:
    """Serve DIRECTORY as a static download server (ETag, Last-Modified, 304)."""
    from sysup.demo_upstream.server import serve_tree

    typer.echo(f"serving {directory} at http://{host}:{port}")
    serve_tree(directory, host=host, port=port)
