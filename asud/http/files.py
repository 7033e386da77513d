"""Send a file as an answer through a producer: never read whole into memory, paced by the client.

Used by ``/store`` (images of hundreds of MB), ``/docs/assets`` and the web pages' static files.
``twisted.web.static.File`` would do it too, but importing it warns (deprecated error pages) and it brings
directory listings we do not want.

:class:`FileProducer` is a push producer reading :data:`CHUNK_SIZE` bytes at a time. Twisted's HTTP channel
drives a pull producer (``FileSender``, ``static.File``'s) through the global ``Cooperator``, a timer hop
per resumption and a chunk per cooperator step; a push producer is resumed straight from the transport's
``doWrite`` once its buffer is empty and writes one chunk, which is over the transport's 64 KiB buffer
size, so the transport pauses it again at once: one read and one write per 256 KiB, no copy of leftovers.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from zope.interface import implementer

__all__ = ["CHUNK_SIZE", "FileProducer", "send_descriptor", "send_file"]

#: Bytes read and written at a time: a multiple of the TCP transport's 128 KiB send limit (a chunk goes
#: out in whole ``send`` calls, the transport never glues a remainder to the next chunk) and over its
#: 64 KiB buffer size (one chunk per resumption). 32 downloads hold 8 MiB in flight.
CHUNK_SIZE = 256 * 1024


@implementer(IPushProducer)
class FileProducer:
    """Writes an open file descriptor to ``request`` until its end; owns (and closes) the descriptor.

    :attr:`done` fires with ``True`` once the last byte is handed to the transport (the producer is
    unregistered by then), with ``False`` when the consumer stopped it first (the client left), or fails
    with the ``OSError`` of a read. Cancelling it stops the transfer (Klein cancels a route's Deferred
    when the client goes away). The descriptor is closed in every case, exactly once.
    """

    def __init__(self, request: IRequest, descriptor: int, chunk_size: int = CHUNK_SIZE) -> None:
        self._request = request
        self._descriptor = descriptor
        self._chunk_size = chunk_size
        self._paused = False
        self._producing = False
        self.done: Deferred[bool] = Deferred(self._cancelled)

    @property
    def open(self) -> bool:
        """Whether the descriptor is still open (the transfer is under way)."""
        return self._descriptor >= 0

    def start(self) -> Deferred[bool]:
        """Register with the request and write the first chunk; returns :attr:`done`."""
        self._request.registerProducer(self, True)
        self.resumeProducing()
        return self.done

    def resumeProducing(self) -> None:
        self._paused = False
        if self._producing:
            return  # a write inside the loop below resumed us: the loop goes on by itself
        self._producing = True
        try:
            while not self._paused and self._descriptor >= 0:
                data = os.read(self._descriptor, self._chunk_size)
                if not data:
                    self._close()
                    self._unregister()
                    self.done.callback(True)
                    return
                self._request.write(data)  # pauses us when the transport's buffer is full
        except OSError:
            self._fail(Failure())
        finally:
            self._producing = False

    def pauseProducing(self) -> None:
        self._paused = True

    def stopProducing(self) -> None:
        """The consumer is gone (the connection closed): close the file, report an unfinished transfer."""
        self._close()
        # The transport stops us before the request learns the connection is lost: a route that finishes
        # the request then must not find a producer still registered.
        self._unregister()
        if not self.done.called:
            self.done.callback(False)

    def _cancelled(self, _: Deferred[bool]) -> None:
        self._close()  # the Deferred then fails with CancelledError, which Klein drops quietly

    def _fail(self, failure: Failure) -> None:
        self._close()
        self._unregister()
        if not self.done.called:
            self.done.errback(failure)

    def _unregister(self) -> None:
        request = self._request
        if getattr(request, "producer", None) is self and getattr(request, "channel", None) is not None:
            request.unregisterProducer()

    def _close(self) -> None:
        descriptor, self._descriptor = self._descriptor, -1
        if descriptor >= 0:
            os.close(descriptor)


def send_descriptor(
    request: IRequest, descriptor: int, size: int, content_type: bytes
) -> bytes | Deferred[bool]:
    """Answer ``request`` with the open file ``descriptor`` of ``size`` bytes, which it now owns.

    Sets the status, ``Content-Type`` and ``Content-Length``. Returns ``b""`` for a ``HEAD`` or an empty
    file (the descriptor closed), otherwise :attr:`FileProducer.done` of the transfer it started.
    """
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", b"%d" % size)
    if request.method == b"HEAD" or size == 0:
        os.close(descriptor)
        return b""
    return FileProducer(request, descriptor).start()


def send_file(request: IRequest, path: Path, content_type: bytes) -> bytes | Deferred[bytes]:
    """Answer ``request`` with the file at ``path`` (``Content-Length`` set; ``HEAD`` without a body).

    Returns ``b""`` for a ``HEAD``, otherwise a Deferred that fires (with ``b""``) once the last byte is
    handed to the transport, or once the client left; cancelling it (Klein does, when the client goes
    away) stops the transfer. A read error fails it.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):  # what ``open()`` refused before the read
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    except OSError:
        os.close(descriptor)
        raise
    answer = send_descriptor(request, descriptor, status.st_size, content_type)
    if isinstance(answer, bytes):
        return answer
    # Sent, or the client left mid-download: not worth a traceback either way.
    return answer.addCallback(lambda _: b"")
