"""Fixtures of the web tests: the API test servers (imported, not redefined) and a headless Chromium.

* ``api_url``/``api_state``: the API's server without a build worker over the synced demo catalog.
* ``browser``: Debian's Chromium driven by Playwright (skipped on a laptop without it, fails under CI).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import (
    api_state,
    api_url,
    demo_info,
    demo_tree,
    demo_upstream_url,
    queued_app,
    queued_settings,
)
from tests.support.requirements import require

__all__ = [
    "api_state",
    "api_url",
    "demo_info",
    "demo_tree",
    "demo_upstream_url",
    "queued_app",
    "queued_settings",
]

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium switches for a quiet, offline, headless run (no sandbox: tests may run as root in a container).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where screenshots go (git-ignored): ``test-artifacts/web/``.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require(CHROMIUM.exists(), f"Chromium not installed at {CHROMIUM} (Debian package chromium)")
    require(importlib.util.find_spec("playwright") is not None, "the playwright Python package is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
