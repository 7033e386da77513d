"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.requirements import require_executable

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real-format samples of ``shared/reference/samples`` (beside the repository)."""
    if not SAMPLES.is_dir():
        pytest.skip(f"reference samples not found at {SAMPLES}")
    return SAMPLES


__all__ = ["require_executable"]
