"""The ``asud`` plugin for ``twistd`` and ``twist``: one ServiceMaker pointing at :mod:`asud.tap`."""

from twisted.application.service import ServiceMaker

asud = ServiceMaker(
    "asud",
    "asud.tap",
    "An Attended Sysupgrade daemon for OpenWrt (builds firmware with the ImageBuilder on request).",
    "asud",
)
