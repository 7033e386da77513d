"""``sysup request``: build an image on a server from the command line, for people scripting builds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

#: Exit code for a request that could not be sent (bad option value, unreadable --defaults file).
EXIT_USAGE = 1


def register(app: typer.Typer) -> None:
    """Add ``request`` to the ``sysup`` command."""
    app.command("request")(request)


def split_packages(values: list[str]) -> list[str]:
    """``--packages "luci curl" --packages -ppp,vim`` → ``["luci", "curl", "-ppp", "vim"]``."""
    return [name for value in values for name in re.split(r"[\s,]+", value) if name]


def build_body(
    *,
    version: str,
    target: str,
    profile: str,
    packages: list[str],
    defaults: str | None,
    rootfs_size: int | None,
    version_code: str | None,
) -> dict[str, Any]:
    """The v1 build request; ``diff_packages`` false: the image holds the defaults plus ``packages``
    (``-name`` leaves a default out)."""
    body: dict[str, Any] = {
        "version": version,
        "target": target,
        "profile": profile,
        "packages": packages,
        "diff_packages": False,
        "client": _client_name(),
    }
    if defaults is not None:
        body["defaults"] = defaults
    if rootfs_size is not None:
        body["rootfs_size_mb"] = rootfs_size
    if version_code:
        body["version_code"] = version_code
    return body


def _client_name() -> str:
    from sysup import __version__

    return f"sysup-request/{__version__}"


def request(
    server: Annotated[str, typer.Option(help="Server URL, e.g. https://sysupgrade.openwrt.org.")],
    version: Annotated[str, typer.Option(help="OpenWrt version, e.g. 24.10.5 or SNAPSHOT.")],
    target: Annotated[str, typer.Option(help="Target/subtarget, e.g. ath79/generic.")],
    profile: Annotated[str, typer.Option(help="Device profile, e.g. tplink_archer-c7-v5.")],
    packages: Annotated[
        list[str] | None,
        typer.Option(help="Packages to add (-name removes a default); repeat or separate by spaces/commas."),
    ] = None,
    defaults: Annotated[
        Path | None, typer.Option(help="First-boot script for /etc/uci-defaults (if the server allows it).")
    ] = None,
    rootfs_size: Annotated[int | None, typer.Option(min=1, help="Root filesystem size in MiB.")] = None,
    version_code: Annotated[
        str | None, typer.Option(help="Expected revision (rNNNNN-hash); the build fails if it differs.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the images and the manifest.")] = Path("."),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of progress.")
    ] = False,
    poll_interval: Annotated[float, typer.Option(min=0.1, help="Seconds between status queries.")] = 2.0,
    timeout: Annotated[
        float, typer.Option(min=1, help="Give up waiting for the build after this many seconds.")
    ] = 3600,
) -> None:
    """Request a firmware build, follow it, download and verify every image, write the manifest.

    Exit codes: 0 done, 1 usage, 3 server unreachable, 4 request rejected, 5 build failed,
    6 server busy or timeout, 7 sha256 mismatch.
    """
    import httpx
    from rich.console import Console

    from sysup.client.errors import ClientError
    from sysup.client.progress import BuildProgress
    from sysup.client.session import BuildSession, request_build

    err = Console(stderr=True)
    try:
        defaults_text = defaults.read_text() if defaults is not None else None
    except OSError as error:
        err.print(f"[red]error:[/red] cannot read --defaults {defaults}: {error.strerror}")
        raise typer.Exit(EXIT_USAGE) from None
    body = build_body(
        version=version,
        target=target,
        profile=profile,
        packages=split_packages(packages or []),
        defaults=defaults_text,
        rootfs_size=rootfs_size,
        version_code=version_code,
    )
    limits = httpx.Timeout(60.0, connect=10.0)
    with httpx.Client(timeout=limits, headers={"User-Agent": _client_name()}) as http:
        session = BuildSession(server, http, poll_interval=poll_interval, build_timeout=timeout)
        try:
            if as_json:
                result = request_build(session, body, out)
            else:
                err.print(f"Requesting {version} {target} {profile} from {session.server}")
                with BuildProgress(err) as progress:
                    result = request_build(
                        session, body, out, on_status=progress.on_status, on_progress=progress.on_progress
                    )
        except ClientError as error:
            if as_json:
                failure = {"status": error.status, "error": type(error).__name__, "detail": error.detail}
                if error.stderr or error.stdout:
                    failure.update(stdout=error.stdout, stderr=error.stderr)
                typer.echo(json.dumps(failure))
            else:
                err.print(f"[red]error:[/red] {error.detail}", highlight=False)
                if error.stderr:
                    tail = "\n".join(error.stderr.rstrip().splitlines()[-15:])
                    err.print("--- last lines of the build log ---", tail, sep="\n", highlight=False)
            raise typer.Exit(error.exit_code) from None
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    answer = result.answer
    err.print(
        f"Built {answer.get('version_number')} {answer.get('version_code')} in {result.elapsed:.1f}s",
        highlight=False,
    )
    for image in result.images:
        typer.echo(f"{image.path}  sha256 {image.sha256}  ({image.type}, {image.filesystem})")
    typer.echo(f"{result.manifest}  manifest")
