"""The two keys of DESIGN.md decision 10.

``request_hash`` names what the client asked; ``image_key`` names what will be built. Both hash one
canonical JSON document (sorted keys, no whitespace) rather than concatenated strings, so no two different
inputs can collide by shifting text between fields (the reference's ``"".join`` can).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from asud.build.request import BuildRequest

__all__ = ["defaults_hash", "image_key", "request_hash", "sha256_text"]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def defaults_hash(defaults: str | None) -> str | None:
    """Full sha256 of a ``defaults`` script, ``None`` without one."""
    return sha256_text(defaults) if defaults else None


def _canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def request_hash(request: BuildRequest) -> str:
    """64 hex digits over the semantic fields of a *normalised* request; ``client`` is not one of them."""
    document = {
        "distro": request.distro,
        "version": request.version,
        "version_code": request.version_code,
        "target": request.target,
        "profile": request.profile.replace(",", "_"),
        "packages": sorted(set(request.packages)),
        "packages_versions": dict(request.packages_versions),
        "diff_packages": request.diff_packages,
        "defaults": defaults_hash(request.defaults),
        "rootfs_size_mb": request.rootfs_size_mb,
        "filesystem": request.filesystem,
        "repositories": dict(request.repositories),
        "repositories_mode": request.repositories_mode if request.repositories else None,
        "repository_keys": sorted(request.repository_keys),
    }
    return sha256_text(_canonical(document))


def image_key(
    *,
    distro: str,
    version: str,
    version_code: str,
    target: str,
    profile: str,
    packages: Sequence[str] | Mapping[str, str],
    packages_versions: Mapping[str, str],
    defaults: str | None,
    rootfs_size_mb: int | None,
    filesystem: str | None,
    repositories: Mapping[str, str],
    repositories_mode: str,
    repository_keys: Sequence[str],
) -> str:
    """64 hex digits over what ``make image`` will produce.

    ``packages`` is the resolved set: the predicted manifest (name → version) for opkg eras, the sorted
    top-level list after removals for apk eras. ``version_code`` is the revision that will be built.
    """
    package_part: Any = dict(sorted(packages.items())) if isinstance(packages, Mapping) else sorted(packages)
    document = {
        "distro": distro,
        "version": version,
        "version_code": version_code,
        "target": target,
        "profile": profile,
        "packages": package_part,
        # Pins are checked against the real manifest by the worker: builds with different pins must not
        # be shared, or one request's failed check would decide another's result.
        "packages_versions": dict(sorted(packages_versions.items())),
        "defaults": defaults_hash(defaults),
        "rootfs_size_mb": rootfs_size_mb,
        "filesystem": filesystem,
        "repositories": dict(repositories),
        "repositories_mode": repositories_mode if repositories else None,
        "repository_keys": sorted(repository_keys),
    }
    return sha256_text(_canonical(document))
