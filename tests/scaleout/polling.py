"""A client as the routers are: POST once, then poll the status until it is final, recording every answer."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

#: Answers a polling client may see while a build is on its way: queued/started, then done.
IN_PROGRESS, DONE = 202, 200


def build_body(rootfs_size_mb: int, **overrides: Any) -> dict[str, Any]:
    """A small ath79 build of the demo tree; each ``rootfs_size_mb`` is a different image (and build)."""
    body: dict[str, Any] = {
        "version": "24.10.4",
        "target": "ath79/generic",
        "profile": "tplink,archer-c7-v5",
        "packages": [],
        "rootfs_size_mb": rootfs_size_mb,
        "client": "scaleout-tests/1",
    }
    body.update(overrides)
    return body


def submit(api_url: str, body: dict[str, Any]) -> str:
    """POST ``body``; the request hash of the 202/200 answer."""
    response = httpx.post(f"{api_url}/api/v1/build", json=body, timeout=30)
    assert response.status_code in (IN_PROGRESS, DONE), response.text
    return str(response.json()["request_hash"])


class Poller(threading.Thread):
    """GETs ``/api/v1/build/<hash>`` every ``interval`` s until 200 (or anything but 202), keeping every
    status seen. Connection errors are recorded as ``0`` (an API process that is down)."""

    def __init__(self, api_urls: list[str], request_hash: str, *, interval: float = 0.2,
                 timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.api_urls, self.request_hash = api_urls, request_hash
        self.interval, self.timeout = interval, timeout
        self.statuses: list[int] = []
        self.final: dict[str, Any] | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        turn = 0
        while time.monotonic() < deadline:
            url = self.api_urls[turn % len(self.api_urls)]
            turn += 1
            try:
                response = httpx.get(f"{url}/api/v1/build/{self.request_hash}", timeout=10)
            except httpx.HTTPError:
                self.statuses.append(0)
                time.sleep(self.interval)
                continue
            self.statuses.append(response.status_code)
            if response.status_code != IN_PROGRESS:
                self.final = response.json()
                return
            time.sleep(self.interval)

    def result(self) -> int:
        """The last status seen, after waiting for the poller to finish."""
        self.join(self.timeout + 10)
        return self.statuses[-1] if self.statuses else -1
