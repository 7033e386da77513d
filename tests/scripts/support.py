"""Running ``python -m asud …`` from the tests: blocking (nothing on the reactor needed) or on the reactor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.internet.utils import getProcessOutputAndValue

ASUD = [sys.executable, "-m", "asud"]

__all__ = ["ASUD", "Run", "asud", "asud_on_reactor", "clean_environment", "write_config"]


@attrs.frozen
class Run:
    returncode: int
    stdout: str
    stderr: str


def clean_environment() -> dict[str, str]:
    """This process's environment without ``ASUD_*`` (a developer's settings must not leak in)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("ASUD_")}


def asud(*args: str, timeout: float = 300) -> Run:
    """``python -m asud ARGS``, waiting for it (for tests whose servers are other processes)."""
    done = subprocess.run([*ASUD, *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_environment(), check=False)  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


async def asud_on_reactor(*args: str) -> Run:
    """``python -m asud ARGS`` without blocking the reactor (when a server under test runs on it)."""
    out, err, code = await getProcessOutputAndValue(
        sys.executable, [*ASUD[1:], *args], env=clean_environment(), reactor=reactor
    )
    return Run(code, out.decode(), err.decode())


def write_config(path: Path, tree: Any, upstream_url: str, *, top: str = "", distro: str = "") -> Path:
    """An ``asud.toml`` with data under ``path.parent / "data"`` that trusts the demo tree's key; ``top``
    and ``distro`` are more TOML for the top level and for ``[distros.openwrt]``."""
    key = json.dumps(tree.public_key_text.strip().splitlines()[-1])
    path.write_text(
        f"data_dir = {json.dumps(str(path.parent / 'data'))}\n{top}\n"
        f"[distros.openwrt]\nupstream_url = {json.dumps(upstream_url)}\npublic_keys = [{key}]\n{distro}\n"
    )
    return path
