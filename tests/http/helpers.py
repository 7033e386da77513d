"""Request bodies and assertions shared by the HTTP tests."""

from __future__ import annotations

import itertools
from typing import Any

from tests.http.client import Answer

#: Each call of :func:`build_body` gets its own ``rootfs_size_mb``, so no two tests share a request hash
#: (builds stay queued without a pool, and identical requests would share one build).
_SIZES = itertools.count(100)


def build_body(**overrides: Any) -> dict[str, Any]:
    """A valid v1 build request for the demo tree (24.10.4, x86/64 generic), unique per call."""
    body: dict[str, Any] = {
        "version": "24.10.4",
        "target": "x86/64",
        "profile": "generic",
        "packages": [],
        "diff_packages": False,
        "rootfs_size_mb": next(_SIZES),
        "client": "asud-tests/1",
    }
    body.update(overrides)
    return body


def assert_error(response: Answer, status: int) -> str:
    """The answer is ``status`` with ``{"status": status, "detail": <str>}``; returns the detail."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])
