"""Path traversal through ``/store`` and every path parameter of the API (hashes, bin_dirs, versions, …),
plain, percent-encoded, double-encoded and overlong, sent byte for byte (no client-side normalisation).

Nothing may answer 5xx, and no answer may carry a byte of a file outside the store: a canary planted in the
data directory, ``/etc/passwd``, or a database-like file.
"""

from __future__ import annotations

import re
import secrets

import pytest
import pytest_twisted

from tests.http.client import raw_request
from tests.security.asud_target import Target, asud_target, demo_tree, flush_stats

__all__ = ["asud_target", "demo_tree", "flush_stats"]

PAYLOADS = [
    "..",
    "../../../../etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2e%2e",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "%25252e%25252e%25252f",
    "..%5c..%5c..%5cetc%5cpasswd",
    "..\\..\\etc\\passwd",
    "....//....//etc/passwd",
    "..;/..;/etc/passwd",
    "%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
    "%e0%80%ae%e0%80%ae/etc/passwd",
    "canary.txt%00.json",
    "..%00/etc/passwd",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "..%2fcanary.txt",
    "../canary.txt",
    "..%252fcanary.txt",
    "." * 300,
]

#: Benign values for the other parameters of a route.
FILLERS = {
    "request_hash": "0" * 64,
    "bin_dir": "0" * 64,
    "name": "image.bin",
    "image_hash": "0" * 12,
    "manifest_hash": "0" * 12,
    "version": "24.10.4",
    "target": "x86",
    "subtarget": "64",
    "path": "releases/24.10.4",
    "profile": "generic",
    "arch": "x86_64",
}


@pytest.fixture(scope="module")
def planted(asud_target: Target) -> dict[str, bytes]:
    """A canary file beside the store, and a real stored file, so traversal has something to find."""
    canary = secrets.token_hex(16).encode()
    data_dir = asud_target.app.config.data_dir
    (data_dir / "canary.txt").write_bytes(canary)
    (data_dir / "secret.db").write_bytes(b"SQLite format 3\x00")
    asud_target.app.files.write_bytes("0" * 64, "image.bin", b"stored image")
    return {"canary": canary, "passwd": b"root:x:0:0", "sqlite": b"SQLite format 3"}


async def _routes(target: Target) -> list[str]:
    spec = (await target.server.client.get("/openapi.json")).json()
    return [path for path, operations in spec["paths"].items() if "{" in path and "get" in operations]


def _targets(template: str) -> list[str]:
    params = re.findall(r"{(\w+)}", template)
    targets = []
    for param in params:
        for payload in PAYLOADS:
            path = template
            for other in params:
                path = path.replace("{" + other + "}", payload if other == param else FILLERS.get(other, "x"))
            targets.append(path)
    return targets


@pytest_twisted.ensureDeferred
async def test_every_path_parameter(asud_target: Target, planted: dict[str, bytes]) -> None:
    routes = await _routes(asud_target)
    assert "/store/{bin_dir}/{name}" in routes and "/api/v1/build/{request_hash}" in routes
    tried = 0
    for template in routes:
        for target in _targets(template):
            for method in ("GET", "HEAD"):
                status, body, _ = await raw_request(asud_target.server, method, target)
                tried += 1
                assert status < 500, (method, target, status, body[:200])
                for secret in planted.values():
                    assert secret not in body, (method, target)
                if template.startswith("/store/") and target != "/store/" + "0" * 64 + "/image.bin":
                    assert status in (301, 400, 404, 405), (target, status)
    assert tried > 500
    print(f"\nFIGURES traversal: requests={tried} routes={len(routes)} leaks=0 5xx=0")


@pytest.mark.parametrize("target", [
    "/store/../canary.txt",
    "/store/%2e%2e/canary.txt",
    "/store/0000000000000000000000000000000000000000000000000000000000000000/../../canary.txt",
    "/store/0000000000000000000000000000000000000000000000000000000000000000/%2e%2e%2f%2e%2e%2fcanary.txt",
    "/store//canary.txt",
    "/store/objects/" + "0" * 64,
    "/store/tmp/x",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/web/static/../../../../etc/passwd",
    "/web/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/web/static/..%2f..%2f..%2fconfig.py",
])
@pytest_twisted.ensureDeferred
async def test_store_and_static_traversal(
    asud_target: Target, planted: dict[str, bytes], target: str
) -> None:
    status, body, _ = await raw_request(asud_target.server, "GET", target)
    assert status in (301, 400, 404, 405), (status, body[:200])
    for secret in planted.values():
        assert secret not in body


@pytest_twisted.ensureDeferred
async def test_stored_file_is_served(asud_target: Target, planted: dict[str, bytes]) -> None:
    status, body, _ = await raw_request(asud_target.server, "GET", "/store/" + "0" * 64 + "/image.bin")
    assert (status, body) == (200, b"stored image")


@pytest.mark.parametrize(
    "target", ["//evil.example/api/v1/build", "///evil.example/x", "//evil.example%2f.."]
)
@pytest_twisted.ensureDeferred
async def test_slash_redirects_stay_on_this_host(asud_target: Target, target: str) -> None:
    status, _, head = await raw_request(asud_target.server, "GET", target)
    assert status < 500
    for line in head.splitlines():
        if line.startswith("location:"):
            location = line.split(":", 1)[1].strip()
            assert location.startswith("/") and not location.startswith("//"), location
