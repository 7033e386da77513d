"""A shared, checksum-verified package cache, and local feeds so a build needs no network.

Layout under ``root`` (``settings.package_cache_dir``)::

    indexes/<feed key>/meta.json          {"url", "etag", "last_modified", "version"} of a feed's index
    indexes/<feed key>/<sha256>/…         one verified version of the index files (Packages + Packages.sig,
                                          or packages.adb), named by the sha256 of the index itself
    blobs/<aa>/<sha256>                   package files, content-addressed, read-only
    sums/                                 verified ``sha256sums`` listings (apk feeds, see ``signed_sums``)
    locks/, tmp/

How each feed is trusted:

* **opkg** (``src/gz name url``): ``url/Packages`` must verify with ``url/Packages.sig`` against the keys
  given (the ImageBuilder's ``keys/``, the distribution's keys and a request's extra keys). Each package
  file must then match the ``SHA256sum`` the verified index gives. ``Packages.gz`` is not used: the
  rewritten feed line says ``src`` (plain ``Packages``), not ``src/gz``.
* **apk** (``…/packages.adb``): the index is opaque here. It is trusted through a signed ``sha256sums``
  found in one of its parent directories (``targets/<t>/<s>/`` lists ``packages/…`` and ``kmods/<kver>/…``;
  ``packages/<arch>/`` lists ``<feed>/…``), which also gives the sha256 of every package file beside it.
  A feed that no signed listing covers is refused.

Re-checks use conditional requests (ETag/Last-Modified), so a warm build fetches a few small answers.

``rewrite_repositories`` then gives the workspace ``sysup-feeds/<feed>/`` directories holding the verified
indexes and hard links to the needed package files, and points ``repositories.conf`` / ``repositories`` at
them (``file://`` URLs for opkg, plain paths for apk), at the same absolute paths the sandbox shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asud.errors import SignatureError, UpstreamError
from asud.upstream.errors import UpstreamNotFound
from asud.upstream.packages_index import parse_packages
from asud.upstream.records import PackageManager
from asud.upstream.repositories import RepositoryEntry, format_repositories
from asud.upstream.usign import PublicKey, verify
from sysup.imagebuilders.locks import FileLock
from sysup.imagebuilders.repository_list import (
    APK_INDEX,
    RepositoriesFile,
    add_repositories,
    read_repositories,
)
from sysup.imagebuilders.signed_sums import SignedSums
from sysup.upstream.fetch import Fetcher

__all__ = [
    "LocalFeed",
    "PackageCache",
    "PackageFile",
    "PrefetchedPackages",
    "RepositoriesFile",
    "add_repositories",
    "read_repositories",
]

#: Directory inside a workspace that holds its local feeds.
FEEDS_DIR = "sysup-feeds"

_FILE_NAME = re.compile(r"^[A-Za-z0-9_.+~@%-]+$")
#: An ABI suffix between a package name and ``-<version>.apk`` in apk file names.
_ABI = re.compile(r"^[0-9][0-9a-z._+]*$")
_APK_INDEX = APK_INDEX


# -- records ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PackageFile:
    """A package file a verified index vouches for. ``name`` is empty for apk (listings carry no names)."""

    filename: str
    sha256: str
    version: str = ""
    name: str = ""
    stripped_name: str = ""
    size: int | None = None


@dataclass(frozen=True, slots=True)
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
    files: dict[str, PackageFile] = field(default_factory=dict)

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


@dataclass(frozen=True, slots=True)
class PrefetchedPackages:
    #: feed name → (package file, its verified copy in the cache)
    files: dict[str, list[tuple[PackageFile, Path]]]
    #: manifest names no remote feed has (normally the ImageBuilder's own ``packages/``: kernel, libc)
    missing: list[str]


# -- helpers ----------------------------------------------------------------------------------------


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48] or "feed"


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copyfile(source, dest)


def _parent_url(url: str) -> str | None:
    """``http://h/a/b/`` → ``http://h/a/``; ``None`` at the top of the server."""
    scheme, sep, rest = url.rstrip("/").partition("://")
    head, slash, _ = rest.rpartition("/")
    if not slash or not head:
        return None
    return f"{scheme}{sep}{head}/"


class PackageCache:
    """See the module docstring. One instance can serve many builds, threads and processes."""

    def __init__(self, root: Path, fetcher: Fetcher) -> None:
        self.root = root
        self.fetcher = fetcher
        self.sums = SignedSums(root / "sums", fetcher)
        for name in ("indexes", "blobs", "locks", "tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)

    # -- indexes --------------------------------------------------------------------------------

    def prefetch_indexes(self, repositories: RepositoriesFile, keys: Sequence[PublicKey]) -> list[LocalFeed]:
        """Verified local copies of the index of every enabled remote feed, in file order."""
        feeds: list[LocalFeed] = []
        used: set[str] = set()
        for position, entry in enumerate(repositories.remote):
            label = (
                entry.name or entry.url.rstrip("/").removesuffix(_APK_INDEX).rstrip("/").rsplit("/", 1)[-1]
            )
            name = f"{position:02d}-{_safe_name(label)}"
            while name in used:
                name += "_"
            used.add(name)
            if repositories.manager == "apk":
                feeds.append(self._apk_feed(name, entry.url, keys))
            else:
                feeds.append(self._opkg_feed(name, entry.url.rstrip("/"), keys))
        return feeds

    def _meta_path(self, url: str) -> Path:
        return self.root / "indexes" / _key(url) / "meta.json"

    def _load_meta(self, url: str) -> dict[str, str]:
        try:
            data = json.loads(self._meta_path(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == url else {}

    def _save_meta(self, url: str, meta: dict[str, str | None]) -> None:
        path = self._meta_path(url)
        fd, temp = tempfile.mkstemp(prefix=".meta.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"url": url, **meta}, out)
        os.replace(temp, path)

    def _store_version(self, url: str, version: str, files: dict[str, bytes]) -> Path:
        """Write one index version (content-addressed, so concurrent writers agree) and return its dir."""
        target = self.root / "indexes" / _key(url) / version
        if target.is_dir():
            return target
        work = Path(tempfile.mkdtemp(prefix="index-", dir=self.root / "tmp"))
        try:
            for name, data in files.items():
                (work / name).write_bytes(data)
                (work / name).chmod(0o444)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(work, target)
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target

    def _opkg_feed(self, name: str, url: str, keys: Sequence[PublicKey]) -> LocalFeed:
        meta = self._load_meta(url)
        version_dir = self.root / "indexes" / _key(url) / meta.get("version", "-")
        have = (version_dir / "Packages").is_file() and (version_dir / "Packages.sig").is_file()
        answer = self.fetcher.fetch(
            f"{url}/Packages",
            etag=meta.get("etag") if have else None,
            last_modified=meta.get("last_modified") if have else None,
        )
        if answer.not_modified and have:
            packages = (version_dir / "Packages").read_bytes()
            signature = (version_dir / "Packages.sig").read_text(encoding="ascii", errors="replace")
            fresh = False
        else:
            if answer.content is None:
                raise UpstreamError(f"{url}/Packages: empty answer")
            packages = answer.content
            sig_answer = self.fetcher.fetch(f"{url}/Packages.sig")
            if sig_answer.content is None:
                raise UpstreamError(f"{url}/Packages.sig: empty answer")
            signature = sig_answer.content.decode("ascii", "replace")
            fresh = True
        try:
            verify(packages, signature, keys)
        except SignatureError as error:
            raise SignatureError(f"{url}/Packages: {error.detail}") from error
        version = hashlib.sha256(packages).hexdigest()
        if fresh:
            version_dir = self._store_version(
                url, version, {"Packages": packages, "Packages.sig": signature.encode("ascii")}
            )
            self._save_meta(
                url, {"etag": answer.etag, "last_modified": answer.last_modified, "version": version}
            )
        files = {}
        for record in parse_packages(packages.decode("utf-8", "replace")):
            if record.filename and record.sha256 and _FILE_NAME.match(record.filename):
                files[record.filename] = PackageFile(
                    record.filename,
                    record.sha256.lower(),
                    record.version,
                    record.name,
                    record.stripped_name,
                    record.size or None,
                )
        return LocalFeed(
            name,
            url,
            "opkg",
            url,
            {"Packages": version_dir / "Packages", "Packages.sig": version_dir / "Packages.sig"},
            files,
        )

    def _apk_listing(self, dir_url: str, keys: Sequence[PublicKey]) -> tuple[dict[str, str], str]:
        """The verified listing of a parent directory that names ``dir_url``'s index, and the prefix."""
        parent = _parent_url(dir_url)
        for _ in range(3):
            if parent is None:
                break
            try:
                listing = self.sums.get(parent, keys)
            except UpstreamNotFound:
                listing = {}
            prefix = dir_url[len(parent) :]
            if f"{prefix}{_APK_INDEX}" in listing:
                return listing, prefix
            parent = _parent_url(parent)
        raise SignatureError(f"{dir_url}{_APK_INDEX}: no signed sha256sums in a parent directory lists it")

    def _apk_feed(self, name: str, url: str, keys: Sequence[PublicKey]) -> LocalFeed:
        if not url.endswith(f"/{_APK_INDEX}"):
            raise UpstreamError(f"apk repository {url!r} does not name a {_APK_INDEX} index")
        dir_url = url[: -len(_APK_INDEX)]
        listing, prefix = self._apk_listing(dir_url, keys)
        version = listing[f"{prefix}{_APK_INDEX}"]
        version_dir = self.root / "indexes" / _key(url) / version
        if not (version_dir / _APK_INDEX).is_file():
            work = Path(tempfile.mkdtemp(prefix="adb-", dir=self.root / "tmp"))
            try:
                self.fetcher.fetch_to_file(url, work / _APK_INDEX, expected_sha256=version)
                version_dir = self._store_version(
                    url, version, {_APK_INDEX: (work / _APK_INDEX).read_bytes()}
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
            self._save_meta(url, {"version": version})
        files = {}
        for path, digest in listing.items():
            rest = path[len(prefix) :] if path.startswith(prefix) else ""
            if rest.endswith(".apk") and "/" not in rest and _FILE_NAME.match(rest):
                files[rest] = PackageFile(rest, digest)
        return LocalFeed(name, url, "apk", dir_url.rstrip("/"), {_APK_INDEX: version_dir / _APK_INDEX}, files)

    # -- packages -------------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def prefetch_packages(
        self, feeds: Sequence[LocalFeed], manifest: Mapping[str, str]
    ) -> PrefetchedPackages:
        """Download (once, verified) the file of every ``name → version`` of a manifest.

        The first feed (in repositories order) that has the exact version wins. Names no remote feed has
        are returned in ``missing``; the ImageBuilder's own repository may hold them.
        """
        files: dict[str, list[tuple[PackageFile, Path]]] = {}
        missing: list[str] = []
        for name, version in manifest.items():
            for feed in feeds:
                package = feed.find(name, version)
                if package is not None:
                    blob = self._fetch_blob(f"{feed.base_url}/{package.filename}", package.sha256)
                    files.setdefault(feed.name, []).append((package, blob))
                    break
            else:
                missing.append(name)
        return PrefetchedPackages(files, missing)

    def _fetch_blob(self, url: str, sha256: str) -> Path:
        blob = self.blob_path(sha256)
        if not blob.is_file():
            with FileLock(self.root / "locks" / f"blob-{sha256}"):
                if not blob.is_file():
                    self.fetcher.fetch_to_file(url, blob, expected_sha256=sha256)
                    blob.chmod(0o444)
        with contextlib.suppress(OSError):
            os.utime(blob)  # last use, for prune()
        return blob

    # -- the workspace ----------------------------------------------------------------------------

    def rewrite_repositories(
        self,
        workspace: Path,
        repositories: RepositoriesFile,
        feeds: Sequence[LocalFeed],
        packages: PrefetchedPackages | None = None,
    ) -> Path:
        """Give ``workspace`` local copies of ``feeds`` (plus links to ``packages``) and point its
        repositories file at them. Idempotent: call it after the indexes, and again after the packages.

        Returns the rewritten file. Remote feeds without a local copy are left out (commented), so the
        build cannot reach for the network.
        """
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
                entries.append(
                    dataclasses.replace(entry, url=str(feeds_dir / feed.name / _APK_INDEX), text="")
                )
            else:
                entries.append(
                    dataclasses.replace(entry, type="src", url=f"file://{feeds_dir / feed.name}", text="")
                )
        target = workspace / repositories.path.name
        text = format_repositories(entries, repositories.manager)
        target.unlink(missing_ok=True)  # never write through a hard link into the cache
        target.write_text(text, encoding="utf-8")
        return target

    # -- size -----------------------------------------------------------------------------------

    def prune(self, max_bytes: int, *, min_age: float = 3600.0) -> int:
        """Delete least recently used package files until the blobs fit ``max_bytes``; returns bytes freed.

        Workspaces hold hard links, so a running build keeps its files even if they are pruned here;
        ``min_age`` spares files used in the last hour anyway.
        """
        blobs = []
        for path in (self.root / "blobs").glob("*/*"):
            with contextlib.suppress(OSError):
                info = path.stat()
                blobs.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in blobs)
        freed = 0
        now = time.time()
        for mtime, size, path in sorted(blobs):
            if total <= max_bytes:
                break
            if now - mtime < min_age:
                continue
            path.unlink(missing_ok=True)
            total -= size
            freed += size
        return freed
