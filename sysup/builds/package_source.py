"""The worker's bridge to the shared package cache: verified indexes and packages into a workspace.

The sandbox has no network, so before ``make manifest`` the workspace gets local, verified copies of every
feed index (plus a request's extra ``repositories``), and before ``make image`` the package files the
manifest names. Keys trusted: the distribution's, the ImageBuilder's own ``keys/`` and the request's
``repository_keys``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asud.upstream.usign import PublicKey, parse_public_key
from sysup.imagebuilders.package_cache import (
    LocalFeed,
    PackageCache,
    RepositoriesFile,
    add_repositories,
    read_repositories,
)


@dataclass(frozen=True, slots=True)
class PreparedFeeds:
    repositories: RepositoriesFile
    feeds: list[LocalFeed]


class CachedPackages:
    """``PackageSource`` backed by ``sysup.imagebuilders.PackageCache``."""

    def __init__(self, cache: PackageCache, distro_keys: Mapping[str, Sequence[str]]) -> None:
        self.cache = cache
        self._distro_keys = {
            name: [parse_public_key(key) for key in keys] for name, keys in distro_keys.items()
        }

    def _keys(self, root: Path, job: Mapping[str, Any]) -> list[PublicKey]:
        keys = list(self._distro_keys.get(job["distro"], []))
        keys_dir = root / "keys"
        if keys_dir.is_dir():
            for path in sorted(keys_dir.iterdir()):
                try:
                    keys.append(parse_public_key(path.read_text(encoding="utf-8")))
                except (OSError, ValueError, UnicodeDecodeError):
                    continue  # apk *.pem keys and others are not usign keys
        keys.extend(parse_public_key(key) for key in job.get("repository_keys") or [])
        return keys

    def prepare_indexes(self, root: Path, job: Mapping[str, Any]) -> PreparedFeeds:
        repositories = read_repositories(root)
        if job.get("repositories"):
            repositories = add_repositories(repositories, job["repositories"],
                                            mode=job.get("repositories_mode") or "append")
        feeds = self.cache.prefetch_indexes(repositories, self._keys(root, job))
        self.cache.rewrite_repositories(root, repositories, feeds)
        return PreparedFeeds(repositories, feeds)

    def prepare_packages(
        self, root: Path, job: Mapping[str, Any], manifest: Mapping[str, str], prepared: Any
    ) -> None:
        assert isinstance(prepared, PreparedFeeds)
        packages = self.cache.prefetch_packages(prepared.feeds, manifest)
        self.cache.rewrite_repositories(root, prepared.repositories, prepared.feeds, packages)
