"""Send a file as an answer through a producer: never read whole into memory, paced by the client.

Used by ``/store`` (images of hundreds of MB) and ``/docs/assets``. ``twisted.web.static.File`` would do
it too, but importing it warns (deprecated error pages) and it brings directory listings we do not want.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from twisted.internet.defer import Deferred
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest

__all__ = ["send_file"]


def send_file(request: IRequest, path: Path, content_type: bytes) -> bytes | Deferred[bytes]:
    """Answer ``request`` with the file at ``path`` (``Content-Length`` set; ``HEAD`` without a body).

    Returns ``b""`` for a ``HEAD``, otherwise a Deferred that fires (with ``b""``) once the last byte is
    handed to the transport; cancelling it (Klein does, when the client goes away) stops the transfer.
    """
    handle: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed when the transfer ends
    try:
        size = os.fstat(handle.fileno()).st_size
    except OSError:
        handle.close()
        raise
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", content_type)
    request.setHeader(b"Content-Length", b"%d" % size)
    if request.method == b"HEAD" or size == 0:
        handle.close()
        return b""
    sender = FileSender()
    cancelled = False

    def stop(_: Deferred[bytes]) -> None:
        nonlocal cancelled
        cancelled = True  # the Deferred then fails with CancelledError, which Klein drops quietly
        sender.stopProducing()

    done: Deferred[bytes] = Deferred(stop)

    def finished(result: object) -> None:
        handle.close()
        # FileSender unregisters itself only when it reaches the end; a request finished with a producer
        # still registered is an error of its own.
        if getattr(request, "producer", None) is sender:
            request.unregisterProducer()
        if cancelled or done.called:
            return
        if isinstance(result, Failure) and result.check(OSError):
            done.errback(result)  # the file could not be read: a real error
            return
        # Sent, or the client left mid-download (the consumer stopped the producer): not worth a traceback.
        done.callback(b"")

    sender.beginFileTransfer(handle, request).addBoth(finished)
    return done
