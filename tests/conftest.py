"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.requirements import require_executable

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "samples"

#: Variables GNU make passes to its children. Under ``make test`` they would reach every ImageBuilder the
#: tests run by hand, which would then print "make[1]: Entering directory …" into the outputs under test.
MAKE_ENVIRONMENT = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR")


def pytest_configure(config: pytest.Config) -> None:
    for name in MAKE_ENVIRONMENT:
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real-format samples of ``shared/reference/samples`` (beside the repository)."""
    if not SAMPLES.is_dir():
        pytest.skip(f"reference samples not found at {SAMPLES}")
    return SAMPLES


__all__ = ["require_executable"]
