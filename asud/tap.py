"""The twistd plugin's options and service: ``twistd -n asud --config FILE [--listen ENDPOINT]...``.

Loading the settings and building the service tree is :func:`asud.service.makeService`'s job; this module
only turns command-line options into a :class:`~asud.config.Config`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.application.service import IService
from twisted.python import usage
from twisted.python.failure import Failure

from asud.config import ConfigError, load


class Options(usage.Options):
    """Options of ``twistd asud`` / ``twist asud``."""

    synopsis = "[--config FILE] [--listen ENDPOINT]..."
    longdesc = (
        "Serve the Attended Sysupgrade API and run the ImageBuilder pool. Settings come from the TOML file "
        "(--config, else $ASUD_CONFIG, else /etc/asud/asud.toml if it exists) and ASUD_* variables; "
        "--listen replaces [http] listen."
    )
    optParameters = [
        ["config", "c", None, "the TOML settings file (see etc/asud.toml)"],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """A Twisted server endpoint string to serve HTTP on, e.g. tcp:8000:interface=127.0.0.1 or
        systemd:domain=INET:name=http (repeatable; default from [http] listen)."""
        self["listen"].append(endpoint)

    opt_l = opt_listen

    def postOptions(self) -> None:
        _journal_format(getattr(self, "parent", None))
        overrides: dict[str, Any] = {}
        if self["listen"]:
            overrides["http"] = {"listen": list(self["listen"])}
        try:
            self["settings"] = load(self["config"], **overrides)
        except ConfigError as error:
            raise usage.UsageError(f"bad setting {error}") from None


def _journal_format(twist_options: Any) -> None:
    """Under systemd with ``twist --log-format=text`` and stdout connected to the journal: lines without
    twist's timestamp (journald stamps them) and with a ``<N>`` priority (``asud.journal``)."""
    if twist_options is None or twist_options.get("logFormat") != "text":
        return
    from asud.journal import journal_observer, writes_to_journal

    if writes_to_journal(twist_options.get("logFile")):
        twist_options["fileLogObserverFactory"] = journal_observer


def makeService(options: Options) -> IService:
    """The daemon for ``options`` (twistd calls this). A daemon that cannot start ends the process with
    exit status 1 (systemd's ``Restart=on-failure`` then applies), after stopping what had started."""
    from asud.service import makeService as make_daemon

    service = make_daemon(options["settings"])
    service.started.addErrback(_exit_nonzero, service.reactor)
    return service


def _exit_nonzero(failure: Failure, reactor: Any) -> None:
    # twist/twistd have no exit status of their own for a service that fails after startService returned.
    def leave() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    reactor.addSystemEventTrigger("after", "shutdown", leave)
    if reactor.running:
        reactor.stop()
