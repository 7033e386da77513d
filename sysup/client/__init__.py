"""The desktop client: ``sysup request`` asks a sysup (or any Attended Sysupgrade) server for an image,
follows the build, downloads and verifies every image and writes the manifest.

``request_build`` is the library entry point; ``sysup.client.cli`` wires it to the command line.
"""

from sysup.client.errors import (
    BuildFailed,
    ClientError,
    RequestRejected,
    ServerBusy,
    ServerUnreachable,
    VerificationFailed,
)
from sysup.client.session import BuildResult, BuildSession, DownloadedImage, request_build

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
