"""Helpers for the Redis-backed store tests: a connected client, and validated requests made without a
catalog (the hashes and fields ``asud.build.validate.validate_request`` would give them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted

from asud.build.hashing import defaults_hash, image_key, request_hash
from asud.build.normalise import normalise_request
from asud.build.request import parse_build_request
from asud.build.validate import ValidatedRequest
from asud.store.redis import Redis
from tests.support.redis import RedisProcess

#: Seconds every call may take in these tests: short, so "Redis down" tests are quick (a stopped server
#: refuses at once; the bounds they assert scale with it), but not so short that a busy CI machine makes a
#: healthy Redis look down (0.5 s did, twice on 2026-12-05: "Not received Redis response in 0.5 seconds").
TIMEOUT = 2.0


@pytest_twisted.async_yield_fixture
async def redis(redis_server: RedisProcess) -> AsyncIterator[Redis]:
    """A :class:`Redis` on the test's private server, disconnected after the test."""
    client = Redis.from_url(redis_server.url, timeout=TIMEOUT)
    try:
        yield client
    finally:
        await client.disconnect()


def validated(**fields: Any) -> ValidatedRequest:
    """A request as ``validate_request`` would return it, for an x86/64 generic build (no catalog)."""
    body = {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": ["luci"], **fields}
    request = normalise_request(parse_build_request(body))
    the_hash = request_hash(request)
    digest = defaults_hash(request.defaults)
    return ValidatedRequest(
        request=request,
        request_hash=the_hash,
        image_key=image_key(
            distro=request.distro, version=request.version, version_code=request.version_code or "r1",
            target=request.target, profile=request.profile, packages=sorted(request.packages),
            packages_versions=request.packages_versions, defaults=request.defaults,
            rootfs_size_mb=request.rootfs_size_mb, filesystem=request.filesystem,
            repositories=request.repositories, repositories_mode=request.repositories_mode,
            repository_keys=request.repository_keys,
        ),
        bin_dir=f"{the_hash}-{digest}" if digest else the_hash,
        version_info=None,
        target_info=None,
        profile=request.profile,
        build_packages=tuple(request.packages),
        manifest=None,
        version_code=request.version_code or "r1",
    )
