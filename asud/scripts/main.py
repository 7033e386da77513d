"""The ``asud`` command: parse the command line, then run one sub-command under ``task.react``.

The daemon itself is not here: it runs through the twistd plugin (``twist asud --config FILE``). These are
the operator's and the user's tools around it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python import usage

from asud.scripts.command import EXIT_USAGE, Command, CommandFailed, innermost
from asud.scripts.demo import DemoOptions
from asud.scripts.demo_upstream import DemoUpstreamOptions
from asud.scripts.fetch_imagebuilder import FetchImageBuilderOptions
from asud.scripts.purge import PurgeOptions
from asud.scripts.request import RequestOptions
from asud.scripts.sync import SyncOptions
from asud.scripts.tail import TailOptions

__all__ = ["AsudOptions", "VersionOptions", "run"]


class VersionOptions(Command):
    """``asud version``."""

    synopsis = ""
    longdesc = "Print the asud version."

    def run(self, reactor: Any) -> Deferred[int]:
        from asud import __version__

        print(__version__)
        return succeed(0)


class AsudOptions(usage.Options):
    """The top level: a sub-command is required."""

    synopsis = "Usage: asud"
    longdesc = (
        "asud — an Attended Sysupgrade daemon for OpenWrt. The daemon runs through the twistd plugin "
        "(twist asud --config FILE); these commands sync, purge, warm caches, request builds and run the "
        "offline demo. 'asud COMMAND --help' describes each."
    )
    subCommands = [
        ["sync", None, SyncOptions, "Read every distribution's download server and report what was found"],
        ["purge", None, PurgeOptions, "Drop the cached result of a request hash so it is built again"],
        [
            "fetch-imagebuilder",
            None,
            FetchImageBuilderOptions,
            "Download, verify and unpack one ImageBuilder into the cache",
        ],
        [
            "request",
            None,
            RequestOptions,
            "Request a build from a server, follow it, download and verify the images",
        ],
        ["tail", None, TailOptions, "Follow a build's log (or every build's, --all) as the server prints it"],
        ["demo", None, DemoOptions, "The whole product offline: demo upstream, config, daemon (twist asud)"],
        ["demo-upstream", None, DemoUpstreamOptions, "Build or serve the synthetic download server"],
        ["version", None, VersionOptions, "Print the asud version"],
    ]

    def opt_version(self) -> NoReturn:
        """Print the asud version and exit."""
        Command.opt_version(self)  # type: ignore[arg-type]
        raise AssertionError("unreachable")

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("a command is needed (asud --help lists them)")


def _start_logging() -> None:
    """Errors of Twisted (an unhandled error in a Deferred) on stderr; the commands say the rest."""
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(defaultLogLevel=LogLevel.error)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def _main(reactor: Any, command: Command) -> Deferred[None]:
    return Deferred.fromCoroutine(_call(reactor, command))


async def _call(reactor: Any, command: Command) -> None:
    try:
        code = await command.run(reactor)
    except CommandFailed as error:
        print(f"asud: {error}", file=sys.stderr)
        code = error.code
    if code:
        raise SystemExit(code)


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``asud`` console script and of ``python -m asud``."""
    options = AsudOptions()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
    except usage.UsageError as error:
        failed = innermost(options)
        print(failed.getSynopsis(), file=sys.stderr)
        print(f"asud: {error} (--help describes the options)", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    command = innermost(options)
    assert isinstance(command, Command)
    code = command.prepare()
    if code:
        sys.exit(code)
    _start_logging()
    task.react(_main, (command,))
