"""Skip a test when something it needs is missing — except under CI, where a skip would hide a gap."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` on a laptop; fail with it when ``CI=true``."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_executable(name: str, package: str | None = None) -> str:
    """The path of ``name``; skip (or fail in CI) when it is not installed."""
    path = shutil.which(name)
    require(path is not None, f"{name} not installed (Debian package {package or name})")
    assert path is not None
    return path
