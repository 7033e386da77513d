"""Local feeds in a workspace: what a verified index vouches for, and the repositories file pointing at it.

:func:`rewrite_repositories` gives a workspace ``asud-feeds/<feed>/`` directories holding the verified
indexes and hard links to the needed package files from the package cache (``asud.build.packages``), and
points ``repositories.conf`` / ``repositories`` at them (``file://`` URLs for opkg, plain paths for apk),
at the same absolute paths the sandbox shows. Remote feeds without a local copy are commented out, so a
build cannot reach for the network.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import attrs

from asud.build.repositories import APK_INDEX, RepositoriesFile
from asud.upstream.records import PackageManager
from asud.upstream.repositories import RepositoryEntry, format_repositories

__all__ = ["FEEDS_DIR", "LocalFeed", "PackageFile", "PrefetchedPackages", "rewrite_repositories"]

#: Directory inside a workspace that holds its local feeds.
FEEDS_DIR = "asud-feeds"

#: An ABI suffix between a package name and ``-<version>.apk`` in apk file names.
_ABI = re.compile(r"^[0-9][0-9a-z._+]*$")


# -- records ----------------------------------------------------------------------------------------


@attrs.frozen
class PackageFile:
    """A package file a verified index vouches for. ``name`` is empty for apk (listings carry no names)."""

    filename: str
    sha256: str
    version: str = ""
    name: str = ""
    stripped_name: str = ""
    size: int | None = None


@attrs.frozen
class LocalFeed:
    """A remote feed whose index is verified and kept locally."""

    name: str
    url: str
    manager: PackageManager
    #: Where the package files of the feed live upstream (opkg: ``url``; apk: the index's directory).
    base_url: str
    #: Verified index files by name (``Packages`` + ``Packages.sig``, or ``packages.adb``).
    index_files: dict[str, Path]
    #: Package files by file name.
    files: dict[str, PackageFile] = attrs.field(factory=dict)

    def find(self, name: str, version: str) -> PackageFile | None:
        """The file of ``name`` (ABI-stripped or not) at exactly ``version``."""
        if self.manager == "opkg":
            for package in self.files.values():
                if package.version == version and name in (package.name, package.stripped_name):
                    return package
            return None
        tail = f"-{version}.apk"
        exact = self.files.get(f"{name}{tail}")
        if exact is not None:
            return exact
        for filename, package in self.files.items():
            if filename.startswith(name) and filename.endswith(tail):
                middle = filename[len(name) : -len(tail)]
                if _ABI.match(middle):
                    return package
        return None


@attrs.frozen
class PrefetchedPackages:
    #: feed name → (package file, its verified copy in the cache)
    files: dict[str, list[tuple[PackageFile, Path]]]
    #: manifest names no remote feed has (normally the ImageBuilder's own ``packages/``: kernel, libc)
    missing: list[str]


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(source, dest)



def rewrite_repositories(
    workspace: Path,
    repositories: RepositoriesFile,
    feeds: Sequence[LocalFeed],
    packages: PrefetchedPackages | None = None,
) -> Path:
    """:meth:`PackageCache.rewrite_repositories`, synchronous."""
    workspace = workspace.resolve()
    feeds_dir = workspace / FEEDS_DIR
    if feeds_dir.exists():
        shutil.rmtree(feeds_dir)
    local: dict[str, LocalFeed] = {}
    for feed in feeds:
        directory = feeds_dir / feed.name
        directory.mkdir(parents=True)
        for index_name, source in feed.index_files.items():
            _link_or_copy(source, directory / index_name)
        for package, blob in packages.files.get(feed.name, []) if packages else []:
            dest = directory / package.filename
            if not dest.exists():
                _link_or_copy(blob, dest)
        local[feed.url.rstrip("/")] = feed
    entries: list[RepositoryEntry] = []
    for entry in repositories.entries:
        if entry.kind != "repository" or not entry.enabled or entry.is_local:
            entries.append(entry)
            continue
        feed = local.get(entry.url.rstrip("/"))
        if feed is None:
            entries.append(dataclasses.replace(entry, enabled=False, text=""))
        elif repositories.manager == "apk":
            entries.append(dataclasses.replace(entry, url=str(feeds_dir / feed.name / APK_INDEX), text=""))
        else:
            entries.append(
                dataclasses.replace(entry, type="src", url=f"file://{feeds_dir / feed.name}", text="")
            )
    target = workspace / repositories.path.name
    text = format_repositories(entries, repositories.manager)
    target.unlink(missing_ok=True)  # never write through a hard link into the cache
    target.write_text(text, encoding="utf-8")
    return target
