"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis import redis_server
from tests.support.requirements import require_executable

#: Real-format samples (from the reference material of the project), kept in the repository.
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "samples"

#: Variables GNU make passes to its children. Under ``make test`` they would reach every ImageBuilder the
#: tests run by hand, which would then print "make[1]: Entering directory …" into the outputs under test.
MAKE_ENVIRONMENT = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR")


def pytest_configure(config: pytest.Config) -> None:
    for name in MAKE_ENVIRONMENT:
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real-format samples of ``tests/fixtures/samples``."""
    return SAMPLES


@pytest.fixture(autouse=True)
def _no_delayed_calls_left() -> Iterator[None]:
    """A test that leaves a timer on the shared reactor poisons the tests after it: fail it instead."""
    from twisted.internet import reactor

    before = set(reactor.getDelayedCalls())  # type: ignore[attr-defined]
    yield
    left = [call for call in reactor.getDelayedCalls() if call not in before and call.active()]  # type: ignore[attr-defined]
    for call in left:
        call.cancel()
    assert not left, f"the test left delayed calls on the reactor: {left}"


__all__ = ["redis_server", "require_executable"]
