"""asud's Redis client: txredisapi with a timeout on every call (DESIGN.md decision 3).

Two connections to one server:

* a lazy **pool** for ordinary commands (``call``, ``script``): opened on the first call, and commands
  wait in a queue until a connection is up, so a :class:`Redis` can be made before the server runs;
* one **dedicated** connection for blocking reads (``blocking_call``, e.g. ``XREADGROUP … BLOCK``): a
  blocking command on a pooled connection would stall every command queued behind it. Blocking calls
  take turns on it (one at a time).

txredisapi has no stream methods, so everything goes through ``execute_command``; replies are ``str``
(UTF-8) and nested lists, never numbers guessed from text (``convertNumbers`` is off: a build record
field ``"1e3"`` stays a string).

With ``reconnect=True`` and the server down, txredisapi queues commands forever (txredisapi #112). So
every call here carries its own deadline (``timeout``, ``[redis] timeout`` in the config) and a call
that misses it, or meets a broken connection, fails with :class:`asud.errors.Unavailable` — the HTTP
layer turns that into a 503 with ``Retry-After``. Error replies of the server (``WRONGTYPE``, a script
error, ``BUSYGROUP``) are not availability problems and come through as :class:`RedisReplyError`; only
the transient ones (``LOADING``, ``BUSY``, ``MASTERDOWN``, ``TRYAGAIN``, ``READONLY``) count as
``Unavailable``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.errors import Unavailable

log = Logger()

__all__ = ["Arg", "Redis", "RedisAddress", "RedisReplyError", "Script", "parse_url"]

Arg = str | bytes | int | float
RedisReplyError = txredisapi.ResponseError

#: Error replies that mean "the server cannot answer right now", not "the command is wrong".
_TRANSIENT_REPLIES = ("LOADING", "BUSY ", "MASTERDOWN", "TRYAGAIN", "READONLY")


@attrs.frozen
class RedisAddress:
    """Where a Redis server listens: a unix socket ``path``, or ``host``/``port``; database ``db``."""

    host: str = ""
    port: int = 6379
    path: str = ""
    db: int = 0
    password: str | None = None
    username: str | None = None

    def describe(self) -> str:
        """For messages: never the password."""
        where = f"unix://{self.path}" if self.path else f"redis://{self.host}:{self.port}"
        return f"{where}/{self.db}" if self.db else where


def parse_url(url: str) -> RedisAddress:
    """``redis://[[user]:password@]host[:port][/db]`` or ``unix:///path.sock[?db=N]`` (``ValueError``)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"no socket path in {url!r}")
        return RedisAddress(path=unquote(parts.path), db=_db(query.get("db", ["0"])[0], url),
                            password=password, username=username)
    if parts.scheme == "redis":
        db = parts.path.strip("/") or query.get("db", ["0"])[0]
        return RedisAddress(host=parts.hostname or "localhost", port=parts.port or 6379, db=_db(db, url),
                            password=password, username=username)
    raise ValueError(f"unsupported Redis URL {url!r}: use redis://host:port/db or unix:///path.sock?db=N")


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"database number must be a whole number in {url!r}, got {text!r}")
    return int(text)


class _Factory(txredisapi.RedisFactory):
    """Reconnects quickly: a restarted server is used again within a couple of seconds, not ten."""

    initialDelay = 0.1
    maxDelay = 2.0


@attrs.frozen
class Script:
    """A Lua script sent by hash (``EVALSHA``), and in full once when the server does not know it yet."""

    source: str
    sha: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


class Redis:
    """Calls to one Redis server, each bounded by ``timeout`` seconds."""

    def __init__(self, address: RedisAddress, *, timeout: float, poolsize: int = 4,
                 clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.address = address
        self.timeout = timeout
        self.poolsize = poolsize
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        # Connections are opened on first use, so a Redis can be made before its server runs (the
        # embedded one starts later in the service tree) without a reconnect back-off in between.
        self._pool_factory: _Factory | None = None
        self._blocking_factory: _Factory | None = None
        self._blocking_turn = defer.DeferredLock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, timeout: float, poolsize: int = 4,
                 clock: IReactorTime | None = None) -> Redis:
        return cls(parse_url(url), timeout=timeout, poolsize=poolsize, clock=clock)

    @property
    def _pool(self) -> _Factory:
        if self._closed:
            raise Unavailable("the connection to Redis is closed")
        if self._pool_factory is None:
            self._pool_factory = self._connect(self.poolsize, reply_timeout=self.timeout)
        return self._pool_factory

    @property
    def _blocking(self) -> _Factory:
        # The dedicated connection has no reply timeout of its own: a BLOCK may last longer.
        if self._closed:
            raise Unavailable("the connection to Redis is closed")
        if self._blocking_factory is None:
            self._blocking_factory = self._connect(1, reply_timeout=None)
        return self._blocking_factory

    def _connect(self, poolsize: int, *, reply_timeout: float | None) -> _Factory:
        address = self.address
        factory = _Factory(address.path or f"{address.host}:{address.port}", address.db or None, poolsize,
                           isLazy=True, charset="utf-8", password=address.password,
                           replyTimeout=reply_timeout, convertNumbers=False, username=address.username)
        from twisted.internet import reactor

        if address.path:
            endpoint: Any = UNIXClientEndpoint(reactor, address.path, timeout=max(1, int(self.timeout)))
        else:
            endpoint = HostnameEndpoint(reactor, address.host, address.port, timeout=self.timeout)
        factory.startConnecting(endpoint)
        return factory

    # -- calls ----------------------------------------------------------------------------------------
    def call(self, *args: Arg) -> defer.Deferred[Any]:
        """One command on the pool; its reply, or ``Unavailable`` after ``timeout`` seconds."""
        d = defer.maybeDeferred(lambda: self._pool.handler.execute_command(*args))
        return self._bounded(d, self.timeout, str(args[0]) if args else "?")

    def blocking_call(self, *args: Arg, wait: float) -> defer.Deferred[Any]:
        """A blocking command (``XREADGROUP … BLOCK``) on the dedicated connection. ``wait`` is how long
        the command itself may block, in seconds; the call fails after ``wait + timeout``."""
        command = str(args[0]) if args else "?"

        def run() -> defer.Deferred[Any]:
            d = defer.maybeDeferred(lambda: self._blocking.handler.execute_command(*args))
            bounded = self._bounded(d, wait + self.timeout, command)
            bounded.addErrback(self._drop_blocking_connection)
            return bounded

        return self._blocking_turn.run(run)

    def script(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> defer.Deferred[Any]:
        """Run ``script`` atomically on the server (``EVALSHA``, falling back to ``EVAL`` once)."""

        def unknown(failure: Failure) -> Any:
            failure.trap(RedisReplyError)
            if not str(failure.value).startswith("NOSCRIPT"):
                return failure
            return self.call("EVAL", script.source, len(keys), *keys, *args)

        return self.call("EVALSHA", script.sha, len(keys), *keys, *args).addErrback(unknown)

    def ping(self) -> defer.Deferred[bool]:
        return self.call("PING").addCallback(lambda reply: reply == "PONG")

    def disconnect(self) -> defer.Deferred[None]:
        """Close both connections and stop reconnecting; fires when they are closed. Calls after this
        fail with ``Unavailable``."""
        self._closed = True
        factories = [factory for factory in (self._pool_factory, self._blocking_factory) if factory]
        return defer.gatherResults([factory.disconnect() for factory in factories],
                                   consumeErrors=True).addCallback(lambda _: None)

    # -- failures -------------------------------------------------------------------------------------
    def _bounded(self, d: defer.Deferred[Any], seconds: float, command: str) -> defer.Deferred[Any]:
        d.addTimeout(seconds, self._clock)
        return d.addErrback(self._unavailable, seconds, command)

    def _unavailable(self, failure: Failure, seconds: float, command: str) -> Any:
        # Clients see why, never where: the address goes to the daemon's log only.
        if failure.check(Unavailable):
            return failure
        if failure.check(RedisReplyError):
            text = str(failure.value)
            if text.startswith(_TRANSIENT_REPLIES):
                raise self._logged(f"cannot answer now ({text.split(' ', 1)[0]})")
            return failure
        if failure.check(defer.CancelledError):
            return failure  # the caller gave up (a stopping pool); addTimeout's own turns into TimeoutError
        if failure.check(defer.TimeoutError):
            raise self._logged(f"did not answer {command} within {seconds:g} s")
        if failure.check(txredisapi.InvalidData, TypeError, ValueError):
            return failure  # our own bug, not the server's absence
        reason = failure.getErrorMessage() or failure.type.__name__  # type: ignore[union-attr]
        raise self._logged(f"is unreachable ({reason})")

    def _logged(self, what: str) -> Unavailable:
        log.warn("Redis at {where} {what}", where=self.address.describe(), what=what)
        return Unavailable(f"Redis {what}; retry later")

    def _drop_blocking_connection(self, failure: Failure) -> Failure:
        """After a failed or cancelled blocking read the dedicated connection still owes a reply (the next
        read would wait behind it): drop it, the next call reconnects."""
        if failure.check(Unavailable, defer.CancelledError) and self._blocking_factory is not None:
            for connection in list(self._blocking_factory.pool):
                connection.transport.abortConnection()
        return failure
