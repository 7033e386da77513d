"""A shared, checksum-verified package cache, and local feeds so a build needs no network.

Layout under ``root`` (``config.package_cache_dir``)::

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

Downloads go through the treq ``Fetcher`` (streamed, hashed on the way, renamed only when verified);
re-checks use conditional requests (ETag/Last-Modified), so a warm build fetches a few small answers.
Verifying and parsing an index, finding a manifest's files in it, and linking a workspace's feeds run in
the reactor's thread pool. Concurrent builds needing the same package file share one download (one
Deferred per sha256); daemons sharing the disk take a ``flock`` per file.

``rewrite_repositories`` then points the workspace at local copies (see ``asud.build.feeds``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, DeferredSemaphore, FirstError, gatherResults
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from asud.build.feeds import FEEDS_DIR, LocalFeed, PackageFile, PrefetchedPackages, rewrite_repositories
from asud.build.locks import FileLock, follow
from asud.build.repositories import APK_INDEX, RepositoriesFile, add_repositories, read_repositories
from asud.build.signed_sums import SignedSums
from asud.errors import SignatureError, UpstreamError
from asud.upstream.errors import UpstreamNotFound
from asud.upstream.fetch import Fetcher
from asud.upstream.packages_index import parse_packages
from asud.upstream.usign import PublicKey, verify

__all__ = [
    "FEEDS_DIR",
    "LocalFeed",
    "PackageCache",
    "PackageFile",
    "PrefetchedPackages",
    "RepositoriesFile",
    "add_repositories",
    "read_repositories",
    "rewrite_repositories",
]

_T = TypeVar("_T")

#: Package files downloaded at once for one build.
PARALLEL_DOWNLOADS = 4

_FILE_NAME = re.compile(r"^[A-Za-z0-9_.+~@%-]+$")


# -- helpers ----------------------------------------------------------------------------------------


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:48] or "feed"


def _parent_url(url: str) -> str | None:
    """``http://h/a/b/`` → ``http://h/a/``; ``None`` at the top of the server."""
    scheme, sep, rest = url.rstrip("/").partition("://")
    head, slash, _ = rest.rpartition("/")
    if not slash or not head:
        return None
    return f"{scheme}{sep}{head}/"


def _opkg_files(
    packages: bytes, signature: str, keys: Sequence[PublicKey], url: str
) -> dict[str, PackageFile]:
    """Verify ``Packages`` against its signature, then list its files (CPU work: runs in a thread)."""
    try:
        verify(packages, signature, keys)
    except SignatureError as error:
        raise SignatureError(f"{url}/Packages: {error.detail}") from error
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
    return files


def _match(feeds: Sequence[LocalFeed], manifest: Mapping[str, str]) -> list[tuple[str, PackageFile | None]]:
    """For each manifest entry the first feed (in repositories order) with the exact version."""
    found: list[tuple[str, PackageFile | None]] = []
    for name, version in manifest.items():
        for feed in feeds:
            package = feed.find(name, version)
            if package is not None:
                found.append((feed.name, package))
                break
        else:
            found.append((name, None))
    return found


class PackageCache:
    """See the module docstring. One instance serves every build of a daemon; several daemons may share
    its directory."""

    def __init__(self, root: Path, fetcher: Fetcher, *, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor
        self.root = root
        self.fetcher = fetcher
        self.sums = SignedSums(root / "sums", fetcher)
        #: package sha256 → the one download of it in progress in this daemon
        self._blobs: dict[str, Deferred[None]] = {}
        for name in ("indexes", "blobs", "locks", "tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)

    def _in_thread(self, function: Callable[..., _T], *args: Any) -> Deferred[_T]:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), function, *args)

    # -- indexes --------------------------------------------------------------------------------

    def prefetch_indexes(
        self, repositories: RepositoriesFile, keys: Sequence[PublicKey]
    ) -> Deferred[list[LocalFeed]]:
        """Verified local copies of the index of every enabled remote feed, in file order."""
        feeds: list[Deferred[LocalFeed]] = []
        used: set[str] = set()
        for position, entry in enumerate(repositories.remote):
            label = (
                entry.name or entry.url.rstrip("/").removesuffix(APK_INDEX).rstrip("/").rsplit("/", 1)[-1]
            )
            name = f"{position:02d}-{_safe_name(label)}"
            while name in used:
                name += "_"
            used.add(name)
            if repositories.manager == "apk":
                feeds.append(Deferred.fromCoroutine(self._apk_feed(name, entry.url, keys)))
            else:
                feeds.append(Deferred.fromCoroutine(self._opkg_feed(name, entry.url.rstrip("/"), keys)))
        return _gather(feeds)

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
        path.parent.mkdir(parents=True, exist_ok=True)
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

    async def _opkg_feed(self, name: str, url: str, keys: Sequence[PublicKey]) -> LocalFeed:
        meta = self._load_meta(url)
        version_dir = self.root / "indexes" / _key(url) / meta.get("version", "-")
        have = (version_dir / "Packages").is_file() and (version_dir / "Packages.sig").is_file()
        answer = await self.fetcher.fetch(
            f"{url}/Packages",
            etag=meta.get("etag") if have else None,
            last_modified=meta.get("last_modified") if have else None,
        )
        if answer.not_modified and have:
            packages = (version_dir / "Packages").read_bytes()
            signature = (version_dir / "Packages.sig").read_text(encoding="ascii", errors="replace")
            fresh = False
        else:
            if answer.body is None:
                raise UpstreamError(f"{url}/Packages: empty answer")
            packages = answer.body
            sig_answer = await self.fetcher.fetch(f"{url}/Packages.sig")
            if sig_answer.body is None:
                raise UpstreamError(f"{url}/Packages.sig: empty answer")
            signature = sig_answer.body.decode("ascii", "replace")
            fresh = True
        files = await self._in_thread(_opkg_files, packages, signature, list(keys), url)
        version = hashlib.sha256(packages).hexdigest()
        if fresh:
            version_dir = await self._in_thread(
                self._store_version, url, version, {"Packages": packages, "Packages.sig": signature.encode()}
            )
            self._save_meta(
                url, {"etag": answer.etag, "last_modified": answer.last_modified, "version": version}
            )
        return LocalFeed(
            name,
            url,
            "opkg",
            url,
            {"Packages": version_dir / "Packages", "Packages.sig": version_dir / "Packages.sig"},
            files,
        )

    async def _apk_listing(self, dir_url: str, keys: Sequence[PublicKey]) -> tuple[dict[str, str], str]:
        """The verified listing of a parent directory that names ``dir_url``'s index, and the prefix."""
        parent = _parent_url(dir_url)
        for _ in range(3):
            if parent is None:
                break
            try:
                listing = await self.sums.get(parent, keys)
            except UpstreamNotFound:
                listing = {}
            prefix = dir_url[len(parent) :]
            if f"{prefix}{APK_INDEX}" in listing:
                return listing, prefix
            parent = _parent_url(parent)
        raise SignatureError(f"{dir_url}{APK_INDEX}: no signed sha256sums in a parent directory lists it")

    async def _apk_feed(self, name: str, url: str, keys: Sequence[PublicKey]) -> LocalFeed:
        if not url.endswith(f"/{APK_INDEX}"):
            raise UpstreamError(f"apk repository {url!r} does not name a {APK_INDEX} index")
        dir_url = url[: -len(APK_INDEX)]
        listing, prefix = await self._apk_listing(dir_url, keys)
        version = listing[f"{prefix}{APK_INDEX}"]
        version_dir = self.root / "indexes" / _key(url) / version
        if not (version_dir / APK_INDEX).is_file():
            work = Path(tempfile.mkdtemp(prefix="adb-", dir=self.root / "tmp"))
            try:
                await self.fetcher.download(url, work / APK_INDEX, expected_sha256=version)
                data = (work / APK_INDEX).read_bytes()
                version_dir = await self._in_thread(self._store_version, url, version, {APK_INDEX: data})
            finally:
                shutil.rmtree(work, ignore_errors=True)
            self._save_meta(url, {"version": version})
        files = {}
        for path, digest in listing.items():
            rest = path[len(prefix) :] if path.startswith(prefix) else ""
            if rest.endswith(".apk") and "/" not in rest and _FILE_NAME.match(rest):
                files[rest] = PackageFile(rest, digest)
        return LocalFeed(name, url, "apk", dir_url.rstrip("/"), {APK_INDEX: version_dir / APK_INDEX}, files)

    # -- packages -------------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def prefetch_packages(
        self, feeds: Sequence[LocalFeed], manifest: Mapping[str, str]
    ) -> Deferred[PrefetchedPackages]:
        """Download (once, verified) the file of every ``name → version`` of a manifest.

        The first feed (in repositories order) that has the exact version wins. Names no remote feed has
        are returned in ``missing``; the ImageBuilder's own repository may hold them.
        """
        return Deferred.fromCoroutine(self._prefetch_packages(list(feeds), dict(manifest)))

    async def _prefetch_packages(
        self, feeds: list[LocalFeed], manifest: dict[str, str]
    ) -> PrefetchedPackages:
        matches = await self._in_thread(_match, feeds, manifest)
        by_name = {feed.name: feed for feed in feeds}
        limit = DeferredSemaphore(PARALLEL_DOWNLOADS)
        wanted = [(feed_name, package) for feed_name, package in matches if package is not None]
        blobs = await _gather([
            limit.run(self._fetch_blob, f"{by_name[feed_name].base_url}/{package.filename}", package.sha256)
            for feed_name, package in wanted
        ])
        files: dict[str, list[tuple[PackageFile, Path]]] = {}
        for (feed_name, package), blob in zip(wanted, blobs, strict=True):
            files.setdefault(feed_name, []).append((package, blob))
        missing = [name for name, package in matches if package is None]
        return PrefetchedPackages(files, missing)

    def _fetch_blob(self, url: str, sha256: str) -> Deferred[Path]:
        return Deferred.fromCoroutine(self._blob(url, sha256))

    async def _blob(self, url: str, sha256: str) -> Path:
        blob = self.blob_path(sha256)
        if not blob.is_file():
            shared = self._blobs.get(sha256)
            if shared is None:
                shared = Deferred.fromCoroutine(self._download_blob(url, sha256))
                self._blobs[sha256] = shared
                shared.addBoth(self._downloaded, sha256)
            await follow(shared)
        with contextlib.suppress(OSError):
            os.utime(blob)  # last use, for prune()
        return blob

    def _downloaded(self, result: Any, sha256: str) -> Any:
        self._blobs.pop(sha256, None)
        return result

    async def _download_blob(self, url: str, sha256: str) -> None:
        blob = self.blob_path(sha256)
        lock = FileLock(self.root / "locks" / f"blob-{sha256}", reactor=self.reactor)
        await lock.acquire()
        try:
            if not blob.is_file():
                await self.fetcher.download(url, blob, expected_sha256=sha256)
                blob.chmod(0o444)
        finally:
            lock.release()

    # -- the workspace ----------------------------------------------------------------------------

    def rewrite_repositories(
        self,
        workspace: Path,
        repositories: RepositoriesFile,
        feeds: Sequence[LocalFeed],
        packages: PrefetchedPackages | None = None,
    ) -> Deferred[Path]:
        """Give ``workspace`` local copies of ``feeds`` (plus links to ``packages``) and point its
        repositories file at them (in a thread). Idempotent: call it after the indexes, and again after
        the packages.

        Fires with the rewritten file. Remote feeds without a local copy are left out (commented), so the
        build cannot reach for the network.
        """
        return self._in_thread(rewrite_repositories, workspace, repositories, list(feeds), packages)

    # -- size -----------------------------------------------------------------------------------

    def prune(self, max_bytes: int, *, min_age: float = 3600.0) -> Deferred[int]:
        """Delete least recently used package files until the blobs fit ``max_bytes`` (in a thread);
        fires with the bytes freed.

        Workspaces hold hard links, so a running build keeps its files even if they are pruned here;
        ``min_age`` spares files used in the last hour anyway.
        """
        return self._in_thread(_prune, self.root / "blobs", max_bytes, min_age)


def _prune(blobs_dir: Path, max_bytes: int, min_age: float) -> int:
    blobs = []
    for path in blobs_dir.glob("*/*"):
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


def _gather(deferreds: list[Deferred[_T]]) -> Deferred[list[_T]]:
    """All results in order, or the first failure itself (not wrapped in ``FirstError``)."""
    def unwrap(failure: Failure) -> Failure:
        return failure.value.subFailure if isinstance(failure.value, FirstError) else failure

    return gatherResults(deferreds, consumeErrors=True).addErrback(unwrap)
