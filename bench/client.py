"""A plain HTTP/1.1 client (the standard library's ``http.client``) and a build request that waits, as owut
does: POST, then poll the status until 200, timing every step it can see."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Answer", "Http", "Waited", "post_and_wait", "request_body", "submit_all", "wait_all"]

#: How often a waiting client polls; small, so the wait adds little to a measured build time.
POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Http:
    """One keep-alive connection to ``base_url`` (``http://127.0.0.1:PORT``), reopened when it drops."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """One request; a ``dict``/``list`` body is sent as JSON."""
        sent_headers = dict(headers or {})
        data: bytes | None
        if body is None or isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):
            connection = self._connection or http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
            self._connection = connection
            try:
                connection.request(method, path, body=data, headers=sent_headers)
                response = connection.getresponse()
                payload = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return Answer(
                response.status, {name.lower(): value for name, value in response.getheaders()}, payload
            )
        raise AssertionError("unreachable")

    def connect(self) -> None:
        """Open the connection now (so a later request does not include the TCP handshake)."""
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._connection.connect()

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Answer:
        return self.request("POST", path, body)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Http:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    client: Http,
    body: dict[str, Any],
    *,
    timeout: float = 300.0,
    watch: Callable[[str], str | None] | None = None,
) -> Waited:
    """POST ``body``, then GET its status every ``POLL_SECONDS`` until it is 200 or an error.

    ``watch(request_hash)``, when given, returns the build's current stage (read from Redis), so the
    cold-build figure can split the wall time per step.
    """
    started = time.perf_counter()
    answer = client.post("/api/v1/build", body)
    stages: list[tuple[float, str]] = []
    deadline = started + timeout
    while answer.status == 202:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"build not finished after {timeout:.0f} s: {answer.body[:500]!r}")
        request_hash = answer.json()["request_hash"]
        if watch is not None:
            stage = watch(request_hash)
            if stage and (not stages or stages[-1][1] != stage):
                stages.append((time.perf_counter() - started, stage))
        time.sleep(POLL_SECONDS)
        answer = client.get(f"/api/v1/build/{request_hash}")
    seconds = time.perf_counter() - started
    if watch is not None:
        stages.append((seconds, "done" if answer.status == 200 else "failed"))
    return Waited(seconds, answer.status, answer.json() or {}, stages)


def wait_all(client: Http, hashes: list[str], *, timeout: float = 600.0, poll: float = 0.05) -> None:
    """Wait until every build in ``hashes`` is 200; a failed build or the timeout is an error.

    The builds are polled one at a time in submission order (the queue's order), each until it is done:
    the moment the last one is seen done is as exact as polling all of them, but the daemon answers one
    poll per interval instead of one per pending build, which on two cores would slow the builds measured.
    """
    deadline = time.monotonic() + timeout
    for number, request_hash in enumerate(hashes):
        while True:
            answer = client.get(f"/api/v1/build/{request_hash}")
            if answer.status == 200:
                break
            if answer.status != 202:
                raise RuntimeError(f"build {request_hash} failed: {answer.body[:300]!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(hashes) - number} builds not finished after {timeout:.0f} s")
            time.sleep(poll)


def submit_all(client: Http, bodies: list[dict[str, Any]]) -> list[str]:
    """POST every body back to back; the request hashes (each answer must be 200 or 202)."""
    hashes = []
    for body in bodies:
        answer = client.post("/api/v1/build", body)
        if answer.status not in (200, 202):
            raise RuntimeError(f"POST answered {answer.status}: {answer.body[:300]!r}")
        hashes.append(answer.json()["request_hash"])
    return hashes
