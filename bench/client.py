"""A client that asks for a build and waits for it, as owut does, timing every step it can see."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

#: How often a waiting client polls; small, so the wait adds little to a measured build time.
POLL_SECONDS = 0.02


@dataclass
class Waited:
    """The final answer of a build request and how long it took from the POST."""

    seconds: float
    status: int
    body: dict[str, Any]
    #: (seconds since the POST, stage) each time the build record's stage changed, when watched.
    stages: list[tuple[float, str]] = field(default_factory=list)


def request_body(version: str, target: str, profile: str, packages: list[str], client: str) -> dict[str, Any]:
    return {"version": version, "target": target, "profile": profile, "packages": packages, "client": client}


def post_and_wait(
    client: httpx.Client, url: str, body: dict[str, Any], *, timeout: float = 300.0, watch: Any = None
) -> Waited:
    """POST ``body``, then GET its status every ``POST_SECONDS`` until it is 200 or an error.

    ``watch(request_hash)``, when given, returns the build's current stage (read from the database), so the
    cold-build figure can split the wall time per step.
    """
    started = time.perf_counter()
    response = client.post(f"{url}/api/v1/build", json=body)
    stages: list[tuple[float, str]] = []
    deadline = started + timeout
    while response.status_code == 202:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"build not finished after {timeout:.0f} s: {response.text[:500]}")
        request_hash = response.json()["request_hash"]
        if watch is not None:
            stage = watch(request_hash)
            if stage and (not stages or stages[-1][1] != stage):
                stages.append((time.perf_counter() - started, stage))
        time.sleep(POLL_SECONDS)
        response = client.get(f"{url}/api/v1/build/{request_hash}")
    seconds = time.perf_counter() - started
    if watch is not None:
        stages.append((seconds, "done" if response.status_code == 200 else "failed"))
    return Waited(seconds, response.status_code, response.json(), stages)
