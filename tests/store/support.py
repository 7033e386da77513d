"""Helpers for the Redis-backed store tests: a connected client and validated requests without a catalog.

``FakeValidated`` stands in for ``asud.build.validate.ValidatedRequest`` with exactly the fields
``BuildRecords`` reads, so these tests do not depend on the catalog.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest_twisted

from asud.store.redis import Redis
from tests.support.redis import RedisProcess

#: Seconds every call may take in these tests (short, so "Redis down" tests are quick).
TIMEOUT = 0.5


@pytest_twisted.async_yield_fixture
async def redis(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    """A :class:`Redis` on the test's private server, disconnected after the test."""
    client = Redis.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        yield client
    finally:
        await client.disconnect()


@attrs.frozen
class FakeRequest:
    distro: str = "openwrt"
    version: str = "24.10.4"
    target: str = "x86/64"
    profile: str = "generic"
    packages: tuple[str, ...] = ("luci",)
    packages_versions: dict[str, str] = attrs.field(factory=dict)
    defaults: str | None = None
    client: str | None = None


@attrs.frozen
class FakeValidated:
    request: FakeRequest
    request_hash: str
    image_key: str
    bin_dir: str

    @property
    def distro(self) -> str:
        return self.request.distro

    @property
    def profile(self) -> str:
        return self.request.profile

    @property
    def has_defaults(self) -> bool:
        return self.request.defaults is not None

    @property
    def versioned(self) -> bool:
        return bool(self.request.packages_versions)

    def echo(self) -> dict[str, Any]:
        request = self.request
        return {"distro": request.distro, "version": request.version, "target": request.target,
                "profile": request.profile, "packages": list(request.packages),
                "packages_versions": dict(request.packages_versions), "defaults": request.defaults,
                "client": request.client}

    def job(self) -> dict[str, Any]:
        return {**self.echo(), "request_hash": self.request_hash, "image_key": self.image_key,
                "bin_dir": self.bin_dir}


def _sha(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def validated(**fields: Any) -> FakeValidated:
    """A validated x86/64 generic request; ``client`` does not change its hashes (as in real ones)."""
    if "packages" in fields:
        fields["packages"] = tuple(fields["packages"])
    if fields.get("defaults") == "":
        fields["defaults"] = None  # OFS sends "" for "no script"
    request = FakeRequest(**fields)
    semantic = attrs.asdict(request, filter=lambda attribute, _: attribute.name != "client")
    the_hash = _sha(semantic)
    bin_dir = the_hash
    if request.defaults:
        bin_dir = f"{the_hash}-{hashlib.sha256(request.defaults.encode()).hexdigest()}"
    return FakeValidated(request=request, request_hash=the_hash, image_key=_sha({"image": semantic}),
                         bin_dir=bin_dir)
