"""The desktop client: ``asud request`` asks an asud (or any Attended Sysupgrade) server for an image,
follows the build, downloads and verifies every image and writes the manifest.

``request_build`` is the library entry point (a coroutine on the reactor); ``asud.scripts.request`` wires it
to the command line.
"""

from asud.client.errors import (
    BuildFailed,
    ClientError,
    RequestRejected,
    ServerBusy,
    ServerUnreachable,
    VerificationFailed,
)
from asud.client.session import BuildResult, BuildSession, DownloadedImage, request_build

__all__ = [
    "BuildFailed",
    "BuildResult",
    "BuildSession",
    "ClientError",
    "DownloadedImage",
    "RequestRejected",
    "ServerBusy",
    "ServerUnreachable",
    "VerificationFailed",
    "request_build",
]
