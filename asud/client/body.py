"""The v1 build request ``asud request`` sends, from its command-line values."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["build_body", "client_name", "split_packages"]


def client_name() -> str:
    """``asud-request/<version>``: the ``client`` field and the User-Agent (servers count clients by it)."""
    from asud import __version__

    return f"asud-request/{__version__}"


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
        "client": client_name(),
    }
    if defaults is not None:
        body["defaults"] = defaults
    if rootfs_size is not None:
        body["rootfs_size_mb"] = rootfs_size
    if version_code:
        body["version_code"] = version_code
    return body
