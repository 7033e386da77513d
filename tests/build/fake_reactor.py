"""A fake process reactor: ``MemoryReactorClock`` plus a ``spawnProcess`` that records what would run.

Modelled on twisted ``runner/test/test_procmon.py`` (``DummyProcessReactor``) and buildbot
``test/fake/reactor.py``: the test sees each spawned argv, feeds the child's output, ends it, and moves
time with ``advance``, so timeouts and kills take no time::

    reactor = FakeProcessReactor()
    deferred = ChildProcess(spec, reactor=reactor, timeout=10, ...).start()
    [child] = reactor.spawned
    child.stdout(b"line\\n")
    reactor.advance(10)                  # the timeout: the child got TERM
    assert child.signals == ["TERM"]
    child.exit(signal="TERM")           # it obeys
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ProcessDone, ProcessExitedAlready, ProcessTerminated
from twisted.internet.interfaces import IProcessTransport, IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["FakeProcess", "FakeProcessReactor"]

_SIGNALS = {"TERM": 15, "KILL": 9, "INT": 2, "HUP": 1}


@implementer(IProcessTransport)
class FakeProcess:
    """The transport of one fake child, and the test's handle on it."""

    def __init__(self, reactor: FakeProcessReactor, protocol: ProcessProtocol, argv: list[str],
                 env: dict[str, str] | None, path: str | None, uid: int | None, gid: int | None,
                 pid: int) -> None:
        self.reactor = reactor
        self.protocol = protocol
        self.argv = argv
        self.env = env
        self.path = path
        self.uid = uid
        self.gid = gid
        self.pid: int | None = pid
        self.signals: list[str] = []
        self.stdin_closed = False
        self.lost = False
        self.ended = False

    # -- IProcessTransport (what the protocol calls) ---------------------------------------------
    def closeStdin(self) -> None:
        self.stdin_closed = True

    def closeStdout(self) -> None:
        pass

    def closeStderr(self) -> None:
        pass

    def closeChildFD(self, descriptor: int) -> None:
        pass

    def writeToChild(self, childFD: int, data: bytes) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def writeSequence(self, data: list[bytes]) -> None:
        raise NotImplementedError

    def loseConnection(self) -> None:
        self.lost = True

    def getPeer(self) -> Any:
        return None

    def getHost(self) -> Any:
        return None

    def signalProcess(self, signalID: str | int) -> None:
        if self.ended:
            raise ProcessExitedAlready()
        self.signals.append(str(signalID))

    # -- the test's side ---------------------------------------------------------------------------
    def stdout(self, data: bytes) -> None:
        self.protocol.childDataReceived(1, data)

    def stderr(self, data: bytes) -> None:
        self.protocol.childDataReceived(2, data)

    def exit(self, code: int = 0, *, signal: str | None = None) -> None:
        """The child ends with ``code`` (or killed by ``signal``) and its pipes close."""
        if self.ended:
            raise AssertionError("the fake process already ended")
        self.ended = True
        self.pid = None
        if signal is not None:
            reason: Failure = Failure(ProcessTerminated(None, _SIGNALS[signal]))
        elif code == 0:
            reason = Failure(ProcessDone(0))
        else:
            reason = Failure(ProcessTerminated(code))
        self.protocol.processExited(reason)
        self.protocol.processEnded(reason)


@implementer(IReactorProcess)
class FakeProcessReactor(MemoryReactorClock):
    """``MemoryReactorClock`` whose ``spawnProcess`` records a :class:`FakeProcess` in ``spawned``."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[FakeProcess] = []
        self.spawn_error: OSError | None = None
        self._next_pid = 1000

    def spawnProcess(self, processProtocol: ProcessProtocol, executable: Any, args: Any = (),
                     env: Any = None, path: Any = None, uid: Any = None, gid: Any = None,
                     usePTY: Any = False, childFDs: Any = None) -> FakeProcess:
        if self.spawn_error is not None:
            raise self.spawn_error
        self._next_pid += 1
        process = FakeProcess(self, processProtocol, list(args), env, path, uid, gid, self._next_pid)
        self.spawned.append(process)
        processProtocol.makeConnection(process)
        return process
