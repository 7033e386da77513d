"""A workspace's repository list: read it, and add the extra repositories a build request names.

The ImageBuilder's ``repositories.conf`` (opkg) or ``repositories`` (apk) is parsed with
``asud.upstream.repositories`` so it can be written back changed only where the package cache points a
feed at its local copy (see ``asud.build.packages.PackageCache.rewrite_repositories``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asud.errors import BadRequest, UpstreamError
from asud.upstream.records import PackageManager
from asud.upstream.repositories import RepositoryEntry, parse_repositories

__all__ = ["APK_INDEX", "RepositoriesFile", "add_repositories", "read_repositories"]

#: The index file an apk repository line names.
APK_INDEX = "packages.adb"

_FEED_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_URL = re.compile(r"^https?://[^\s'\"\\`$]+$")


@dataclass(frozen=True, slots=True)
class RepositoriesFile:
    """A workspace's ``repositories.conf`` (opkg) or ``repositories`` (apk), parsed."""

    manager: PackageManager
    path: Path
    entries: tuple[RepositoryEntry, ...]

    @property
    def remote(self) -> list[RepositoryEntry]:
        """Enabled feeds on a server (the ImageBuilder's own ``file:packages`` is not one)."""
        return [e for e in self.entries if e.kind == "repository" and e.enabled and not e.is_local]


def read_repositories(workspace: Path) -> RepositoriesFile:
    """The workspace's repository list; apk when a ``repositories`` file exists (as ASU decides)."""
    apk_file = workspace / "repositories"
    manager: PackageManager = "apk" if apk_file.is_file() else "opkg"
    path = apk_file if manager == "apk" else workspace / "repositories.conf"
    if not path.is_file():
        raise UpstreamError(f"the ImageBuilder has neither repositories nor repositories.conf ({workspace})")
    return RepositoriesFile(
        manager, path, tuple(parse_repositories(path.read_text(encoding="utf-8"), manager))
    )


def add_repositories(
    repositories: RepositoriesFile,
    extra: Mapping[str, str],
    *,
    mode: Literal["append", "replace"] = "append",
) -> RepositoriesFile:
    """Add a request's ``repositories`` (name → URL, already allow-listed elsewhere).

    ``replace`` first drops the ImageBuilder's own remote feeds (its local ``packages/`` stays). apk URLs
    that do not name an index get ``/packages.adb`` appended.
    """
    entries = list(repositories.entries)
    if mode == "replace":
        entries = [e for e in entries if not (e.kind == "repository" and e.enabled and not e.is_local)]
    for name, url in extra.items():
        if not _FEED_NAME.match(name):
            raise BadRequest(f"invalid repository name: {name!r}")
        if not _URL.match(url):
            raise BadRequest(f"invalid repository URL: {url!r}")
        if repositories.manager == "apk":
            if not url.endswith(".adb"):
                url = f"{url.rstrip('/')}/{APK_INDEX}"
            entries.append(RepositoryEntry("repository", url=url))
        else:
            entries.append(RepositoryEntry("repository", type="src/gz", name=name, url=url.rstrip("/")))
    return dataclasses.replace(repositories, entries=tuple(entries))
