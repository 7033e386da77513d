"""``asud demo-upstream build DIR`` and ``asud demo-upstream serve DIR``: the synthetic download server.

``serve`` prints one line, ``serving DIR at http://HOST:PORT``, as soon as it listens (flushed, so a parent
process can read the URL of ``--listen tcp:0:…``), then serves until it is stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python import usage

from asud.scripts.command import Command, CommandFailed, Group

__all__ = ["BuildOptions", "DemoUpstreamOptions", "ServeOptions"]

#: Where ``serve`` listens unless told otherwise (the URL ``build`` writes into the ImageBuilders).
DEFAULT_LISTEN = "tcp:8001:interface=127.0.0.1"
DEFAULT_BASE_URL = "http://127.0.0.1:8001"


class BuildOptions(Command):
    """``asud demo-upstream build DIR``."""

    synopsis = "DIR [--seed N] [--scale demo|real] [--base-url URL] [--no-imagebuilders]"
    longdesc = "Generate the demo download tree in DIR (an earlier generated tree there is replaced)."
    optParameters = [
        *Command.optParameters,
        ["seed", None, 1, "same seed, same bytes", int],
        ["scale", None, "demo", "demo, or real: real-size metadata without ImageBuilders (benchmarks)"],
        ["base-url", None, DEFAULT_BASE_URL, "URL the tree will be served at (in the IB repositories)"],
    ]
    optFlags = [["no-imagebuilders", None, "do not build the ImageBuilder archives"]]

    def parseArgs(self, directory: str) -> None:
        self["directory"] = Path(directory)

    def postOptions(self) -> None:
        if self["scale"] not in ("demo", "real"):
            raise usage.UsageError(f"--scale must be 'demo' or 'real', not {self['scale']!r}")

    async def run(self, reactor: Any) -> int:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        from twisted.internet.threads import deferToThreadPool

        from asud.demo.generator import generate_tree

        console = Console(soft_wrap=True)  # paths and lines whole, for people and for scripts
        started = time.monotonic()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("starting", total=None)
            # Writing thousands of files and signing them is CPU and disk work: a thread, not the reactor.
            try:
                info = await deferToThreadPool(
                    reactor,
                    reactor.getThreadPool(),
                    generate_tree,
                    self["directory"],
                    seed=self["seed"],
                    base_url=self["base-url"],
                    scale=self["scale"],
                    with_imagebuilders=not self["no-imagebuilders"],
                    progress=lambda text: progress.update(task, description=text),
                )
            except (FileExistsError, ValueError) as error:
                raise CommandFailed(str(error)) from None
        files = [path for path in info.root.rglob("*") if path.is_file()]
        size = sum(path.stat().st_size for path in files)
        console.print(
            f"[bold]Demo upstream[/bold] in {info.root} ({len(files)} files, {size / 2**20:.1f} MiB, "
            f"{time.monotonic() - started:.1f} s)"
        )
        console.print(f"signing key {info.fingerprint}: {info.root / 'keys' / (info.fingerprint + '.pub')}")
        for version in info.versions:
            console.print(f"  {version}: {len(info.targets[version])} targets")
        return 0


class ServeOptions(Command):
    """``asud demo-upstream serve DIR``."""

    synopsis = "DIR [--listen ENDPOINT]"
    longdesc = (
        "Serve DIR as a static download server (ETag, Last-Modified, 304 on conditional requests) until "
        "stopped. Prints 'serving DIR at URL' once it listens; --listen tcp:0:interface=127.0.0.1 picks a "
        "free port."
    )
    optParameters = [
        *Command.optParameters,
        ["listen", "l", DEFAULT_LISTEN, "Twisted endpoint string to listen on"],
    ]

    def parseArgs(self, directory: str) -> None:
        path = Path(directory)
        if not path.is_dir():
            raise usage.UsageError(f"{directory} is not a directory (see 'asud demo-upstream build')")
        self["directory"] = path

    async def run(self, reactor: Any) -> int:
        from asud.demo.server import base_url, serve_tree

        port = await serve_tree(reactor, self["directory"], self["listen"])
        try:
            where = base_url(port.getHost())
        except ValueError:
            where = self["listen"]
        print(f"serving {self['directory']} at {where}", flush=True)
        forever: Deferred[int] = Deferred()  # react ends the process on SIGINT/SIGTERM
        return await forever


class DemoUpstreamOptions(Group):
    """``asud demo-upstream build|serve``."""

    synopsis = "[--config FILE]"
    longdesc = "A synthetic, signed OpenWrt download server for the demo and the tests."
    subCommands = [
        ["build", None, BuildOptions, "Generate the demo download tree in DIR"],
        ["serve", None, ServeOptions, "Serve DIR as a static download server"],
    ]
