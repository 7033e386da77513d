"""What every ``asud`` sub-command shares: ``--config``, ``--help``, and a ``run(reactor)`` that gives the
exit code.

A sub-command is a :class:`Command` subclass (``twisted.python.usage`` options) whose ``run`` returns a
Deferred or a coroutine of the exit code; :func:`asud.scripts.main.run` parses the command line and calls it
under ``task.react``. Heavy imports live inside ``run`` so ``asud --help`` stays quick.
"""

from __future__ import annotations

import getopt
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.python import usage

from asud.config import Config, ConfigError, load

__all__ = ["Command", "CommandFailed", "Group", "innermost"]

#: Exit code of a command line that cannot be used (unknown option, missing argument, bad setting).
EXIT_USAGE = 1


class CommandFailed(Exception):
    """A command could not do its job; ``str()`` is the message for people, ``code`` the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Command(usage.Options):
    """A sub-command: ``--config FILE`` and ``--help``; ``--version`` prints asud's version."""

    optParameters: list[list[Any]] = [
        ["config", "c", None, "TOML settings file (else $ASUD_CONFIG, else /etc/asud/asud.toml)"],
    ]

    def parseOptions(self, options: list[str] | None = None) -> None:
        """Options may follow the arguments (``build DIR --seed 2``), as people type them: getopt's GNU mode
        sorts them first, then Twisted's parser sees ``OPTIONS -- ARGS``."""
        argv = list(sys.argv[1:] if options is None else options)
        try:
            found, arguments = getopt.gnu_getopt(argv, self.shortOpt, self.longOpt)
        except getopt.GetoptError as error:
            raise usage.UsageError(str(error)) from None
        ordered: list[str] = []
        for name, value in found:
            if name.startswith("--"):
                ordered.append(f"{name}={value}" if f"{name[2:]}=" in self.longOpt else name)
            else:
                ordered.extend([name, value] if f"{name[1]}:" in self.shortOpt else [name])
        super().parseOptions([*ordered, "--", *arguments])

    def opt_version(self) -> NoReturn:
        """Print the asud version and exit."""
        from asud import __version__

        print(__version__)
        sys.exit(0)

    def load_config(self, **overrides: Any) -> Config:
        """The settings of ``--config`` (and ``ASUD_*``); :class:`CommandFailed` names a bad key."""
        path = self["config"]
        parent = getattr(self, "parent", None)
        if path is None and parent is not None:
            path = parent.get("config")  # asud demo-upstream --config FILE serve …
        try:
            return load(path, **overrides)
        except ConfigError as error:
            raise CommandFailed(f"bad setting {error}", EXIT_USAGE) from None

    def prepare(self) -> int:
        """Work before the reactor starts, where blocking is harmless (a system check); non-zero stops."""
        return 0

    def run(self, reactor: Any) -> Deferred[int] | Coroutine[Any, Any, int]:
        """Do the command's work; the result is the process's exit code."""
        raise NotImplementedError


class Group(usage.Options):
    """A command with sub-commands of its own (``asud demo-upstream build|serve``)."""

    optParameters = Command.optParameters
    opt_version = Command.opt_version

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError(f"a command is needed: {', '.join(name for name, *_ in self.subCommands)}")


def innermost(options: usage.Options) -> usage.Options:
    """The options of the last sub-command on the command line (``asud demo-upstream serve`` → serve's)."""
    while getattr(options, "subOptions", None) is not None:
        options = options.subOptions
    return options
