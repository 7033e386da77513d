"""The daemon's own ``redis-server`` when ``[redis] url`` is empty (DESIGN.md decision 4).

A child process of the daemon (``reactor.spawnProcess``, never a shell): it listens only on a unix socket
under ``config.redis_dir`` (no TCP port), keeps its data in an append-only file there, and logs to
``redis.log`` beside it. :meth:`EmbeddedRedis.start` fires once the server answers ``PING``; stopping sends
``TERM`` (Redis then writes its append-only file and exits) and waits, with ``KILL`` after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, error, protocol, task
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.config import Config

__all__ = ["EmbeddedRedis", "EmbeddedRedisError"]

log = Logger()

#: Longest unix socket path the kernel accepts (``sun_path`` minus the terminating NUL).
MAX_SOCKET_PATH = 107


class EmbeddedRedisError(RuntimeError):
    """The embedded ``redis-server`` could not be started."""


class _ServerProcess(protocol.ProcessProtocol):
    """Fires ``ended`` with how the process ended (``ProcessDone``/``ProcessTerminated``, as a value)."""

    def __init__(self) -> None:
        self.ended: defer.Deferred[BaseException] = defer.Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(reason.value)


class _Ping(protocol.Protocol):
    def __init__(self) -> None:
        self.answered: defer.Deferred[bool] = defer.Deferred()
        self._buffer = b""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"PING\r\n")

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if b"\r\n" in self._buffer and not self.answered.called:
            self.answered.callback(self._buffer.startswith(b"+PONG"))
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        if not self.answered.called:
            self.answered.callback(False)


class EmbeddedRedis(Service):
    """Runs ``redis-server`` under ``directory`` for as long as the service runs."""

    name = "redis-server"

    def __init__(self, directory: Path, *, executable: str = "redis-server", start_timeout: float = 15.0,
                 stop_timeout: float = 30.0, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.directory = Path(directory)
        self.executable = executable
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.socket_path = self.directory / "redis.sock"
        self.ready: defer.Deferred[None] | None = None
        self._reactor = reactor
        self._process: _ServerProcess | None = None
        self._transport: Any = None

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> EmbeddedRedis:
        return cls(config.redis_dir, executable=config.redis.server, **kwargs)

    @property
    def url(self) -> str:
        """What :meth:`asud.store.redis.Redis.from_url` connects to."""
        return f"unix://{self.socket_path}"

    def startService(self) -> None:
        """For parents that do not call :meth:`start` (a plain ``MultiService``): ``ready`` fires later."""
        Service.startService(self)
        self.ready = self.start()

    def start(self) -> defer.Deferred[None]:
        """Spawn the server and fire once it answers ``PING`` (``EmbeddedRedisError`` if it does not)."""
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        executable = shutil.which(self.executable)
        if executable is None:
            raise EmbeddedRedisError(
                f"{self.executable!r} not found: install redis-server (apt-get install redis-server) "
                "or set [redis] url to a running server")
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise EmbeddedRedisError(
                f"the socket path {self.socket_path} is longer than {MAX_SOCKET_PATH} bytes: "
                "use a shorter data_dir or set [redis] url")
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        args = [
            executable, "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--dir", str(self.directory), "--appendonly", "yes", "--save", "", "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]
        self._process = _ServerProcess()
        self._transport = self._reactor.spawnProcess(
            self._process, executable, args, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            path=str(self.directory), childFDs={0: "w", 1: "r", 2: "r"})
        log.info("started {executable} (pid {pid}) on {socket}", executable=executable,
                 pid=self._transport.pid, socket=self.socket_path)
        waited = 0.0
        while waited < self.start_timeout:
            if self._process.ended.called:
                raise EmbeddedRedisError(f"redis-server exited at start:\n{self._log_tail()}")
            if await self._answers():
                return
            await task.deferLater(self._reactor, 0.05, lambda: None)
            waited += 0.05
        await self._terminate()
        raise EmbeddedRedisError(
            f"redis-server did not answer within {self.start_timeout:g} s:\n{self._log_tail()}")

    async def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        endpoint = UNIXClientEndpoint(self._reactor, str(self.socket_path), timeout=1)
        try:
            ping = _Ping()
            await connectProtocol(endpoint, ping)
        except (OSError, error.ConnectError):
            return False
        return await ping.answered.addTimeout(1.0, self._reactor).addErrback(lambda _: False)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        return defer.ensureDeferred(self._terminate())

    async def _terminate(self) -> None:
        process, transport = self._process, self._transport
        if process is None or process.ended.called:
            return
        log.info("stopping redis-server (pid {pid})", pid=transport.pid)
        try:
            transport.signalProcess("TERM")
        except error.ProcessExitedAlready:
            return
        kill = self._reactor.callLater(self.stop_timeout, self._kill)
        try:
            await process.ended
        finally:
            if kill.active():
                kill.cancel()

    def _kill(self) -> None:
        log.warn("redis-server did not stop within {seconds} s: killing it", seconds=self.stop_timeout)
        with contextlib.suppress(error.ProcessExitedAlready):
            self._transport.signalProcess("KILL")

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return (self.directory / "redis.log").read_text(errors="replace")[-limit:]
        except OSError:
            return "(no redis.log)"
