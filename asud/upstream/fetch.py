"""Fetching files from a download server with treq: ``http(s)://``, ``file://`` URLs and plain paths.

The same code reads downloads.openwrt.org, a mirror and the demo tree on disk. Conditional requests
(``ETag``/``Last-Modified``) let a catalog refresh skip unchanged files; for local files a validator is
derived from mtime and size, so callers treat both alike. ``fetch_bytes``/``fetch_cached`` keep the last
body of every URL on disk (``asud.upstream.etag_cache``), so a restarted daemon asks "changed since?"
instead of downloading its whole catalog again.

Every request is bounded: at most ``max_concurrent`` at once (a ``DeferredSemaphore``), the answer's
headers within ``timeout`` (``addTimeout`` on treq's request, which cancels it), a small body within
``timeout`` too, and a download's body with no ``timeout``-long silence (an ImageBuilder may take minutes,
but never stalls). Local files are read in a thread.

Failures: ``UpstreamNotFound`` (404/410 or a missing file), ``UpstreamHTTPError`` (other error statuses,
5xx only after the retries), ``UpstreamError`` (connection failures and timeouts after the retries,
oversized bodies), ``SignatureError`` (a download whose sha256 is not the expected one).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, DeferredSemaphore
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory
from twisted.web.error import SchemeNotSupported
from twisted.web.iweb import IResponse

from asud.errors import AsudError, SignatureError, UpstreamError
from asud.upstream.cache_front import CacheFront
from asud.upstream.errors import UpstreamHTTPError, UpstreamNotFound
from asud.upstream.etag_cache import EtagCache, entry_key
from asud.upstream.local_files import copy_local, local_path, read_local
from asud.upstream.response_body import BodyReader, describe_failure, guarded, is_cancellation

__all__ = [
    "CachedResult",
    "DownloadResult",
    "FetchResult",
    "Fetcher",
    "UpstreamHTTPError",
    "UpstreamNotFound",
    "local_path",
]

_T = TypeVar("_T")
Progress = Callable[[int, int | None], None]

#: Most of an error page read (so the connection can be kept); a longer one closes the connection.
_ERROR_BODY_LIMIT = 64 * 1024
#: URLs remembered as in use (kept by ``prune_cache``); a catalog has a few thousand.
MAX_KEPT_IN_USE = 100_000


@attrs.frozen
class FetchResult:
    """One answer. ``body`` is ``None`` exactly when ``status`` is 304 (``not_modified``)."""

    url: str
    status: int
    body: bytes | None = attrs.field(repr=False)
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@attrs.frozen
class CachedResult:
    """A body read through the on-disk cache: ``not_modified`` when the server answered 304 and the
    bytes came from the cache; ``stale`` (the error) when the server could not be reached and the cache
    answered instead (``fetch_cached(stale_ok=True)``)."""

    url: str
    body: bytes = attrs.field(repr=False)
    etag: str | None
    last_modified: str | None
    not_modified: bool
    stale: str | None = None

    @property
    def transferred(self) -> int:
        return 0 if self.not_modified or self.stale else len(self.body)


@attrs.frozen
class DownloadResult:
    path: Path
    sha256: str
    size: int
    url: str = ""


class _Retry(Exception):
    """An attempt failed in a way worth repeating (connection error, timeout, 5xx)."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.detail)
        self.error = error


def _header(response: IResponse, name: str) -> str | None:
    values = response.headers.getRawHeaders(name)
    return values[-1] if values else None


def _length(response: IResponse) -> int | None:
    length = response.length
    return length if isinstance(length, int) else None


class _QuietClientFactory(_HTTP11ClientFactory):
    # The default logs "Starting/Stopping factory" for every upstream connection: noise in the daemon's log.
    noisy = False


class Fetcher:
    """Fetches upstream files with retries, bounds and conditional requests.

    ``retries`` counts repeats after the first attempt; the wait doubles from ``backoff`` seconds.
    ``reactor`` drives the network and every timer (threads for local files use the global reactor's
    pool). Call ``close()`` when done: it drops the kept-alive connections (and their timers).
    ``persistent=False`` keeps no connection open between requests (one-shot commands, tests).
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        max_concurrent: int = 8,
        cache_dir: Path | None = None,
        reactor: IReactorTime | None = None,
        user_agent: str = "asud",
        backoff: float = 0.5,
        max_bytes: int = 2 * 1024**3,
        persistent: bool = True,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor  # type: ignore[assignment]
        self._reactor: Any = reactor
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_bytes = max_bytes
        self._pool = HTTPConnectionPool(self._reactor, persistent=persistent)
        self._pool._factory = _QuietClientFactory
        self._pool.maxPersistentPerHost = max_concurrent
        self._client = HTTPClient(Agent(self._reactor, connectTimeout=timeout, pool=self._pool))
        self._semaphore = DeferredSemaphore(max(1, max_concurrent))
        self._cache = CacheFront(EtagCache(cache_dir)) if cache_dir is not None else None
        #: URLs asked for through the cache since start, newest last (what pruning keeps).
        self._used: OrderedDict[str, None] = OrderedDict()
        self._user_agent = user_agent

    def close(self) -> Deferred[None]:
        """Finish the cache writes still pending and close the kept-alive connections; fires when done."""
        return Deferred.fromCoroutine(self._close())

    async def _close(self) -> None:
        if self._cache is not None:
            await self._cache.flush()
        await self._pool.closeCachedConnections()

    # -- retries and one request ---------------------------------------------------------------

    async def _with_retries(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        last: UpstreamError | None = None
        for number in range(self.retries + 1):
            if number:
                await deferLater(self._reactor, self.backoff * 2 ** (number - 1))
            try:
                return await self._semaphore.run(lambda: Deferred.fromCoroutine(attempt()))  # type: ignore[no-any-return]
            except _Retry as retry:
                last = retry.error
        assert last is not None
        raise last

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, list[str]]:
        headers = {"User-Agent": [self._user_agent]}
        for name, value in (extra or {}).items():
            headers[name] = [value]
        return headers

    async def _open(self, url: str, headers: dict[str, list[str]]) -> IResponse:
        """A response with a 2xx/304 status; other statuses become errors (5xx: retryable)."""
        request = self._client.get(url, headers=headers, unbuffered=True, reactor=self._reactor)
        # Our own timer rather than addTimeout: a cancelled request fails with whatever the HTTP client
        # makes of it (ResponseNeverReceived, a DNS error); this flag tells our timeout from other errors,
        # and ``guarded`` a caller's cancel.
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            request.cancel()

        timer = self._reactor.callLater(self.timeout, expire)
        try:
            response: IResponse = await guarded(request)
        except (AsudError, CancelledError):
            raise
        except SchemeNotSupported:
            raise UpstreamError(f"{url}: only http, https and file URLs can be fetched") from None
        except Exception as exc:
            if expired:
                detail = f"{url}: TimeoutError: no answer within {self.timeout:g} s"
                raise _Retry(UpstreamError(detail)) from None
            if is_cancellation(exc):
                raise CancelledError() from exc
            raise _Retry(UpstreamError(f"{url}: {describe_failure(exc)}")) from exc
        finally:
            if timer.active():
                timer.cancel()
        status = response.code
        if status < 400:
            return response
        await self._drain(response)  # read the (small) error page so the connection can be kept
        if status in (404, 410):
            raise UpstreamNotFound(f"{url}: not found upstream ({status})", status, url)
        error = UpstreamHTTPError(f"{url}: upstream answered {status}", status, url)
        if status >= 500:
            raise _Retry(error)
        raise error

    async def _drain(self, response: IResponse) -> None:
        read = 0

        def sink(data: bytes) -> None:
            nonlocal read
            read += len(data)
            if read > _ERROR_BODY_LIMIT:
                raise UpstreamError("error page too long")  # closes the connection, nothing more

        try:
            await BodyReader.read(response, sink, self._reactor, whole=self.timeout)
        except Exception as exc:
            if is_cancellation(exc) and not isinstance(exc, defer.TimeoutError):
                raise
            # the status is the error; a broken error page only costs the connection

    async def _body(self, url: str, response: IResponse, sink: Callable[[bytes], None], *,
                    idle: bool) -> None:
        """Feed the body to ``sink``; ``idle``: the timeout is for silence, not for the whole body."""
        try:
            if idle:
                await BodyReader.read(response, sink, self._reactor, idle=self.timeout)
            else:
                await BodyReader.read(response, sink, self._reactor, whole=self.timeout)
        except defer.TimeoutError:
            raise _Retry(UpstreamError(f"{url}: TimeoutError: body not received within "
                                       f"{self.timeout:g} s")) from None
        except AsudError:
            raise
        except Exception as exc:
            if is_cancellation(exc):
                raise CancelledError() from exc
            raise _Retry(UpstreamError(f"{url}: {describe_failure(exc)}")) from exc

    def _check_length(self, url: str, response: IResponse, limit: int) -> int | None:
        total = _length(response)
        if total is not None and total > limit:
            raise UpstreamError(f"{url}: {total} bytes is over the limit of {limit}")
        return total

    # -- fetch ---------------------------------------------------------------------------------

    def fetch(self, url: str, *, etag: str | None = None,
              last_modified: str | None = None) -> Deferred[FetchResult]:
        """The file at ``url`` in memory, or status 304 when ``etag``/``last_modified`` still match."""
        path = local_path(url)
        if path is not None:
            return deferToThread(read_local, url, path, etag, last_modified, self.max_bytes).addCallback(
                lambda found: FetchResult(url, *found)
            )
        extra = {}
        if etag:
            extra["If-None-Match"] = etag
        if last_modified:
            extra["If-Modified-Since"] = last_modified
        headers = self._headers(extra)
        return Deferred.fromCoroutine(
            self._with_retries(lambda: self._fetch_http(url, headers, etag, last_modified))
        )

    async def _fetch_http(self, url: str, headers: dict[str, list[str]], etag: str | None,
                          last_modified: str | None) -> FetchResult:
        response = await self._open(url, headers)
        new_etag = _header(response, "ETag")
        new_modified = _header(response, "Last-Modified")
        if response.code == 304:
            # Read the (empty) body: a response left unread keeps its connection from the pool.
            await self._body(url, response, lambda data: None, idle=False)
            return FetchResult(url, 304, None, new_etag or etag, new_modified or last_modified)
        self._check_length(url, response, self.max_bytes)
        body = bytearray()

        def sink(data: bytes) -> None:
            body.extend(data)
            if len(body) > self.max_bytes:
                raise UpstreamError(f"{url}: body is over the limit of {self.max_bytes} bytes")

        await self._body(url, response, sink, idle=False)
        return FetchResult(url, response.code, bytes(body), new_etag, new_modified)

    # -- through the on-disk cache -------------------------------------------------------------

    def fetch_bytes(self, url: str, *, stale_ok: bool = False) -> Deferred[bytes]:
        """The body of ``url``; with a ``cache_dir``, a conditional request answered from the cache."""
        return self.fetch_cached(url, stale_ok=stale_ok).addCallback(lambda result: result.body)

    def fetch_cached(self, url: str, *, stale_ok: bool = False) -> Deferred[CachedResult]:
        """Like ``fetch_bytes``, saying whether the bytes came from the cache (after a 304).

        ``stale_ok``: when the server cannot be reached (connection failure, timeout, 5xx after the
        retries) the cached bytes are returned with ``stale`` set to the error, rather than failing — the
        last known bytes beat nothing while upstream is down; they are verified like any others.
        """
        return Deferred.fromCoroutine(self._fetch_cached(url, stale_ok))

    async def _fetch_cached(self, url: str, stale_ok: bool) -> CachedResult:
        cache = self._cache
        if cache is None or local_path(url) is not None:
            fresh = await self.fetch(url)
            return CachedResult(url, fresh.body or b"", fresh.etag, fresh.last_modified, False)
        self._note_use(url)
        known = await cache.get(url)
        entry = known if known is not None and not known.absent else None
        try:
            result = await self.fetch(
                url, etag=entry.etag if entry else None, last_modified=entry.last_modified if entry else None
            )
        except UpstreamNotFound:
            if known is None or not known.absent:
                cache.put_absent(url)
            raise
        except UpstreamError as error:
            unreachable = not isinstance(error, UpstreamHTTPError) or error.upstream_status >= 500
            if not (stale_ok and unreachable and known is not None):
                raise
            if known.absent:
                detail = f"{url}: not found upstream (404 when last asked; now: {error.detail})"
                raise UpstreamNotFound(detail, 404, url) from error
            return CachedResult(url, known.body, known.etag, known.last_modified, False, stale=error.detail)
        if result.not_modified and entry is not None:
            return CachedResult(url, entry.body, result.etag or entry.etag,
                                result.last_modified or entry.last_modified, True)
        if result.body is None:  # a 304 to a request that had no validators: ask plainly
            result = await self.fetch(url)
        body = result.body or b""
        cache.put(url, body, result.etag, result.last_modified)  # written behind, a failure only logged
        return CachedResult(url, body, result.etag, result.last_modified, False)

    def _note_use(self, url: str) -> None:
        self._used[url] = None
        self._used.move_to_end(url)
        while len(self._used) > MAX_KEPT_IN_USE:
            self._used.popitem(last=False)

    def prune_cache(self, max_bytes: int) -> Deferred[int]:
        """Bound the on-disk cache to ``max_bytes`` (in a thread), keeping the entry of every URL asked for
        since start; fires with the number of entries removed (0 without a cache)."""
        if self._cache is None:
            return defer.succeed(0)
        disk, used = self._cache.disk, list(self._used)

        def prune() -> int:
            return len(disk.prune(max_bytes, frozenset(map(entry_key, used))))

        return deferToThread(prune)

    # -- download to a file --------------------------------------------------------------------

    def download(
        self,
        url: str,
        dest: Path,
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> Deferred[DownloadResult]:
        """Stream ``url`` into ``dest``, hashing on the way and checking ``expected_sha256``.

        Bytes go to a temporary file beside ``dest`` that is renamed only once complete and verified,
        so ``dest`` is either the whole verified file or untouched. ``progress(done, total)`` is called
        per chunk (``total`` is ``None`` when the server does not say).
        """
        return Deferred.fromCoroutine(self._download(url, Path(dest), expected_sha256, max_bytes, progress))

    async def _download(self, url: str, dest: Path, expected_sha256: str | None, max_bytes: int | None,
                        progress: Progress | None) -> DownloadResult:
        limit = max_bytes if max_bytes is not None else self.max_bytes
        expected = expected_sha256.lower() if expected_sha256 else None
        path = local_path(url)
        if path is not None:
            digest, size = await deferToThread(copy_local, url, path, dest, limit, expected)
            if progress is not None:
                progress(size, size)
            return DownloadResult(dest, digest, size, url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        temp = Path(temp_name)
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes 0600; a downloaded file is an ordinary readable file
            with os.fdopen(fd, "wb") as out:
                digest, size = await self._with_retries(
                    lambda: self._download_http(url, out, limit, progress)
                )
            if expected and digest != expected:
                raise SignatureError(f"{url}: sha256 is {digest}, expected {expected}")
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return DownloadResult(dest, digest, size, url)

    async def _download_http(self, url: str, out: Any, limit: int,
                             progress: Progress | None) -> tuple[str, int]:
        out.seek(0)
        out.truncate()
        response = await self._open(url, self._headers())
        total = self._check_length(url, response, limit)
        digest = hashlib.sha256()
        done = 0

        def sink(data: bytes) -> None:
            nonlocal done
            done += len(data)
            if done > limit:
                raise UpstreamError(f"{url}: body is over the limit of {limit} bytes")
            digest.update(data)
            out.write(data)
            if progress is not None:
                progress(done, total)

        await self._body(url, response, sink, idle=True)
        return digest.hexdigest(), done
