"""What can go wrong for a client, each with the exit code ``asud request`` ends with.

The codes match the router client's (``clients/openwrt/README.md``) so scripts treat both alike:
3 unreachable or unexpected answer, 4 rejected, 5 build failed, 6 busy or too slow, 7 verification failed.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base: ``detail`` is the message for people (the server's ``detail`` when it sent one)."""

    exit_code = 1

    def __init__(self, detail: str, *, status: int | None = None, stdout: str = "", stderr: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.stdout = stdout
        self.stderr = stderr


class ServerUnreachable(ClientError):
    """No connection, a timeout, or an answer that is not the API's JSON."""

    exit_code = 3


class RequestRejected(ClientError):
    """4xx: the server will not build this (unknown version, profile or package, bad field)."""

    exit_code = 4


class BuildFailed(ClientError):
    """The build ran and failed; ``stdout``/``stderr`` hold the ImageBuilder's output."""

    exit_code = 5


class ServerBusy(ClientError):
    """The queue is full (529/503/429), or the build did not finish within the time given."""

    exit_code = 6


class VerificationFailed(ClientError):
    """A downloaded file does not have the sha256 the server announced."""

    exit_code = 7
