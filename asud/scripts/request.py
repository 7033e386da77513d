"""``asud request``: build an image on a server from the command line, for people scripting builds.

Exit codes: 0 done, 1 usage, 3 server unreachable, 4 request rejected, 5 build failed, 6 server busy or
timeout, 7 sha256 mismatch (the codes of the router client, so scripts treat both alike).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from twisted.python import usage

from asud.scripts.command import EXIT_USAGE, Command

__all__ = ["RequestOptions"]


def _at_least(minimum: float, kind: type[float] | type[int]) -> Any:
    def coerce(text: str) -> float | int:
        value = kind(text)
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g}")
        return value

    coerce.coerceDoc = f"At least {minimum:g}."  # type: ignore[attr-defined]
    return coerce


class RequestOptions(Command):
    """``asud request --server URL --version V --target T --profile P [...]``."""

    synopsis = "--server URL --version V --target T --profile P [--packages P]... [options]"
    longdesc = (
        "Request a firmware build, follow it, download and verify every image, write the manifest. "
        "Exit codes: 0 done, 1 usage, 3 server unreachable, 4 request rejected, 5 build failed, "
        "6 server busy or timeout, 7 sha256 mismatch."
    )
    optParameters = [
        *Command.optParameters,
        ["server", None, None, "server URL, e.g. https://sysupgrade.openwrt.org"],
        ["target", None, None, "target/subtarget, e.g. ath79/generic"],
        ["profile", None, None, "device profile, e.g. tplink_archer-c7-v5"],
        ["defaults", None, None, "first-boot script for /etc/uci-defaults (if the server allows it)"],
        ["rootfs-size", None, None, "root filesystem size in MiB", _at_least(1, int)],
        ["version-code", None, None, "expected revision (rNNNNN-hash); the build fails if it differs"],
        ["out", None, ".", "directory for the images and the manifest"],
        ["poll-interval", None, 2.0, "seconds between status queries", _at_least(0.1, float)],
        ["timeout", None, 3600.0, "give up on the build after this many seconds", _at_least(1, float)],
    ]
    optFlags = [["json", None, "print one JSON object instead of progress"]]

    def __init__(self) -> None:
        super().__init__()
        self["packages"] = []
        self["version"] = None

    def opt_version(self, version: str) -> None:  # type: ignore[override]
        """OpenWrt version, e.g. 24.10.5 or SNAPSHOT."""
        self["version"] = version

    def opt_packages(self, packages: str) -> None:
        """Packages to add (-name removes a default); repeat or separate by spaces/commas."""
        self["packages"].append(packages)

    def postOptions(self) -> None:
        missing = [f"--{name}" for name in ("server", "version", "target", "profile") if not self[name]]
        if missing:
            raise usage.UsageError(f"missing {', '.join(missing)}")

    async def run(self, reactor: Any) -> int:
        from rich.console import Console

        from asud.client.body import build_body, split_packages

        err = Console(stderr=True)
        defaults = Path(self["defaults"]) if self["defaults"] is not None else None
        try:
            defaults_text = defaults.read_text() if defaults is not None else None
        except OSError as error:
            err.print(f"[red]error:[/red] cannot read --defaults {defaults}: {error.strerror}")
            return EXIT_USAGE
        body = build_body(
            version=self["version"],
            target=self["target"],
            profile=self["profile"],
            packages=split_packages(self["packages"]),
            defaults=defaults_text,
            rootfs_size=self["rootfs-size"],
            version_code=self["version-code"],
        )
        return await _request(reactor, self, body, err)


async def _request(reactor: Any, options: RequestOptions, body: dict[str, Any], err: Any) -> int:
    from rich.markup import escape
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    from asud.client.body import client_name
    from asud.client.errors import ClientError
    from asud.client.progress import BuildProgress
    from asud.client.session import BuildResult, BuildSession, request_build

    pool = HTTPConnectionPool(reactor)
    http = HTTPClient(Agent(reactor, connectTimeout=10.0, pool=pool))
    session = BuildSession(
        options["server"],
        http,
        reactor,
        poll_interval=options["poll-interval"],
        build_timeout=options["timeout"],
        headers={"User-Agent": client_name()},
    )
    out = Path(options["out"])
    as_json = options["json"]
    try:
        if as_json:
            result: BuildResult = await request_build(session, body, out)
        else:
            asked = f"{body['version']} {body['target']} {body['profile']}"
            err.print(f"Requesting {asked} from {session.server}")
            with BuildProgress(err) as progress:
                result = await request_build(
                    session, body, out, on_status=progress.on_status, on_progress=progress.on_progress
                )
    except ClientError as error:
        if as_json:
            failure = {"status": error.status, "error": type(error).__name__, "detail": error.detail}
            if error.stderr or error.stdout:
                failure.update(stdout=error.stdout, stderr=error.stderr)
            print(json.dumps(failure))
        else:
            err.print(f"[red]error:[/red] {escape(error.detail)}", highlight=False, soft_wrap=True)
            if error.stderr:
                tail = "\n".join(error.stderr.rstrip().splitlines()[-15:])
                err.print(
                    "--- last lines of the build log ---",
                    tail,
                    sep="\n",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )
        return error.exit_code
    finally:
        await pool.closeCachedConnections()
    if as_json:
        print(json.dumps(result.to_json()))
        return 0
    answer = result.answer
    err.print(
        f"Built {answer.get('version_number')} {answer.get('version_code')} in {result.elapsed:.1f}s",
        highlight=False,
    )
    for image in result.images:
        print(f"{image.path}  sha256 {image.sha256}  ({image.type}, {image.filesystem})")
    print(f"{result.manifest}  manifest")
    sys.stdout.flush()
    return 0
