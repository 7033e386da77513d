"""Fetching files from a download server: ``http(s)://`` through httpx, ``file://`` URLs and plain paths.

The same code reads downloads.openwrt.org, a mirror and the demo tree on disk. Conditional requests
(``ETag``/``Last-Modified``) let a catalog sync skip unchanged files; for local files a validator is
derived from mtime and size, so callers treat both alike.

Failures: ``UpstreamNotFound`` (404 or a missing file), ``UpstreamHTTPError`` (other error statuses, 5xx
only after the retries), ``UpstreamError`` (connection failures after the retries, oversized bodies),
``SignatureError`` (a download whose sha256 is not the expected one).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from asud.errors import SignatureError, UpstreamError
from asud.upstream.errors import UpstreamHTTPError, UpstreamNotFound

__all__ = [
    "DownloadResult",
    "FetchResult",
    "Fetcher",
    "UpstreamHTTPError",
    "UpstreamNotFound",
    "local_path",
]

_CHUNK = 1024 * 1024
_T = TypeVar("_T")
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One answer. ``content`` is ``None`` exactly when ``not_modified`` (HTTP 304 or same validator)."""

    url: str
    status: int
    content: bytes | None
    etag: str | None
    last_modified: str | None
    not_modified: bool


@dataclass(frozen=True, slots=True)
class DownloadResult:
    url: str
    path: Path
    size: int
    sha256: str


def local_path(url: str) -> Path | None:
    """The file a ``file:`` URL or a plain path names; ``None`` for network URLs."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if not parts.scheme:
        return Path(url)
    return None


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _parse_http_date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class _Retry(Exception):
    """An attempt failed in a way worth repeating (connection error, 5xx)."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.detail)
        self.error = error


class Fetcher:
    """Fetches upstream files with retries, a size limit and conditional requests.

    >>> with Fetcher(timeout=10) as fetcher:
    ...     result = fetcher.fetch("https://downloads.openwrt.org/.versions.json", etag=old_etag)

    ``retries`` counts repeats after the first attempt; the wait doubles from ``backoff`` seconds.
    A ``client`` passed in is used as is and not closed by ``close()``.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        retries: int = 3,
        max_bytes: int = 2 * 1024**3,
        client: httpx.Client | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.timeout = timeout
        self.retries = max(0, retries)
        self.max_bytes = max_bytes
        self.backoff = backoff
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=timeout, follow_redirects=True, headers={"User-Agent": "sysup"},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # -- retries -------------------------------------------------------------------------------

    def _attempts(self) -> Iterator[int]:
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            yield attempt

    def _with_retries(self, attempt_once: Callable[[], _T]) -> _T:
        last: UpstreamError | None = None
        for _ in self._attempts():
            try:
                return attempt_once()
            except _Retry as retry:
                last = retry.error
        assert last is not None
        raise last

    @contextlib.contextmanager
    def _stream(self, url: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """An open response with a 2xx/304 status; other statuses become errors (5xx: retryable)."""
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                if status == 404 or status == 410:
                    response.read()  # small; read so the connection is kept (see _fetch_http)
                    raise UpstreamNotFound(f"{url}: not found upstream ({status})", status, url)
                if status >= 500:
                    raise _Retry(UpstreamHTTPError(f"{url}: upstream answered {status}", status, url))
                if status >= 400:
                    raise UpstreamHTTPError(f"{url}: upstream answered {status}", status, url)
                yield response
        except httpx.TransportError as exc:
            raise _Retry(UpstreamError(f"{url}: {type(exc).__name__}: {exc}")) from exc

    def _check_length(self, url: str, response: httpx.Response) -> int | None:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > self.max_bytes:
            raise UpstreamError(f"{url}: {total} bytes is over the limit of {self.max_bytes}")
        return total

    # -- fetch ---------------------------------------------------------------------------------

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """The file at ``url`` in memory, or ``not_modified`` when ``etag``/``last_modified`` still match."""
        path = local_path(url)
        if path is not None:
            return self._fetch_file(url, path, etag, last_modified)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return self._with_retries(lambda: self._fetch_http(url, headers, etag, last_modified))

    def _fetch_http(self, url: str, headers: dict[str, str], etag: str | None,
                    last_modified: str | None) -> FetchResult:
        with self._stream(url, headers) as response:
            new_etag = response.headers.get("ETag") or None
            new_modified = response.headers.get("Last-Modified") or None
            if response.status_code == 304:
                # Read the (empty) body: a response closed unread takes its keep-alive connection with it,
                # and a re-sync of 304s then opened one TCP connection per request.
                response.read()
                return FetchResult(url, 304, None, new_etag or etag, new_modified or last_modified, True)
            self._check_length(url, response)
            body = bytearray()
            try:
                for chunk in response.iter_bytes(_CHUNK):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise UpstreamError(f"{url}: body is over the limit of {self.max_bytes} bytes")
            except httpx.TransportError as exc:
                raise _Retry(UpstreamError(f"{url}: {type(exc).__name__}: {exc}")) from exc
            return FetchResult(url, response.status_code, bytes(body), new_etag, new_modified, False)

    def _fetch_file(self, url: str, path: Path, etag: str | None, last_modified: str | None) -> FetchResult:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise UpstreamNotFound(f"{url}: no such file", 404, url) from None
        except OSError as exc:
            raise UpstreamError(f"{url}: {exc}") from exc
        if not path.is_file():
            raise UpstreamNotFound(f"{url}: not a file", 404, url)
        # Weak validator from what changes when the file changes; the same shape as nginx's ETag.
        file_etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        file_modified = _http_date(stat.st_mtime)
        unchanged = etag == file_etag if etag else False
        if not etag and last_modified:
            since = _parse_http_date(last_modified)
            unchanged = since is not None and int(stat.st_mtime) <= since
        if unchanged:
            return FetchResult(url, 304, None, file_etag, file_modified, True)
        if stat.st_size > self.max_bytes:
            raise UpstreamError(f"{url}: {stat.st_size} bytes is over the limit of {self.max_bytes}")
        return FetchResult(url, 200, path.read_bytes(), file_etag, file_modified, False)

    # -- download to a file --------------------------------------------------------------------

    def fetch_to_file(
        self,
        url: str,
        dest: Path,
        progress: Progress | None = None,
        expected_sha256: str | None = None,
    ) -> DownloadResult:
        """Stream ``url`` into ``dest``, checking ``expected_sha256``.

        Bytes go to a temporary file beside ``dest`` that is renamed only once complete and verified,
        so ``dest`` is either the whole verified file or untouched. ``progress(done, total)`` is called
        per chunk (``total`` is ``None`` when the server does not say).
        """
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        expected = expected_sha256.lower() if expected_sha256 else None
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        temp = Path(temp_name)
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes 0600; a downloaded file is an ordinary readable file
            with os.fdopen(fd, "wb") as out:
                path = local_path(url)
                if path is not None:
                    digest, size = self._copy_file(url, path, out, progress)
                else:
                    digest, size = self._with_retries(lambda: self._download_http(url, out, progress))
            if expected and digest != expected:
                raise SignatureError(f"{url}: sha256 is {digest}, expected {expected}")
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return DownloadResult(url=url, path=dest, size=size, sha256=digest)

    def _copy_file(self, url: str, path: Path, out: IO[bytes], progress: Progress | None) -> tuple[str, int]:
        try:
            source = path.open("rb")
        except FileNotFoundError:
            raise UpstreamNotFound(f"{url}: no such file", 404, url) from None
        except OSError as exc:
            raise UpstreamError(f"{url}: {exc}") from exc
        with source:
            total = os.fstat(source.fileno()).st_size
            if total > self.max_bytes:
                raise UpstreamError(f"{url}: {total} bytes is over the limit of {self.max_bytes}")
            return self._pump(url, iter(lambda: source.read(_CHUNK), b""), out, total, progress)

    def _download_http(self, url: str, out: IO[bytes], progress: Progress | None) -> tuple[str, int]:
        out.seek(0)
        out.truncate()
        with self._stream(url, {}) as response:
            total = self._check_length(url, response)
            try:
                return self._pump(url, response.iter_bytes(_CHUNK), out, total, progress)
            except httpx.TransportError as exc:
                raise _Retry(UpstreamError(f"{url}: {type(exc).__name__}: {exc}")) from exc

    def _pump(self, url: str, chunks: Iterator[bytes], out: IO[bytes], total: int | None,
              progress: Progress | None) -> tuple[str, int]:
        digest = hashlib.sha256()
        done = 0
        for chunk in chunks:
            done += len(chunk)
            if done > self.max_bytes:
                raise UpstreamError(f"{url}: body is over the limit of {self.max_bytes} bytes")
            digest.update(chunk)
            out.write(chunk)
            if progress is not None:
                progress(done, total)
        return digest.hexdigest(), done
