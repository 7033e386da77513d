"""The distributions the demo can generate: ``openwrt`` (the default tree) and a small ``libremesh``.

A distribution is its own download server: its own directory, releases, targets and usign key (derived
from the seed *and* the name). The ``libremesh`` tree is deliberately small — one release (2024.1, built on
OpenWrt 24.10, so its packages are 24.10's), one target — and carries the device quirks the 2017 API
answers with its own status codes:

* ``tplink_tl-wr842n-v3``: the small flash of the openwrt tree (``python3-light`` does not fit → 413);
* ``tplink_cpe510-v1``: only a factory image (upgrade-request → 501, build-request → 200);
* ``ubnt_bullet-m-xw``: every image disabled upstream, so ``make image`` produces none (→ 500).
"""

from __future__ import annotations

from dataclasses import dataclass

from asud.demo.devices import (
    SMALL_FLASH_DEVICE,
    SMALL_FLASH_LIMIT,
    TARGETS,
    ImageDef,
    TargetDef,
)
from asud.demo.devices import make_device as device
from asud.demo.releases import OLDSTABLE_VERSION, RELEASES, STABLE_VERSION, Release

__all__ = ["DISTRIBUTIONS", "LIBREMESH", "OPENWRT", "DemoDistribution"]

KiB = 1024


@dataclass(frozen=True, slots=True)
class DemoDistribution:
    name: str
    releases: tuple[Release, ...]
    targets: tuple[TargetDef, ...]
    stable_version: str
    oldstable_version: str


OPENWRT = DemoDistribution("openwrt", RELEASES, TARGETS, STABLE_VERSION, OLDSTABLE_VERSION)

_FACTORY = ImageDef("factory", "squashfs", "squashfs-factory.bin")

#: Profile without a sysupgrade image, and profile without any image (see the module docstring).
FACTORY_ONLY_DEVICE = "tplink_cpe510-v1"
NO_IMAGES_DEVICE = "ubnt_bullet-m-xw"

_ATH79 = next(target for target in TARGETS if target.target == "ath79/generic")
_LIBREMESH_ATH79 = TargetDef(
    target=_ATH79.target,
    arch_packages=_ATH79.arch_packages,
    architecture=_ATH79.architecture,
    filesystems=_ATH79.filesystems,
    extra_defaults=_ATH79.extra_defaults,
    devices=(
        device(
            "librerouter_librerouter-v1",
            [("LibreRouter", "LibreRouter", "v1")],
            "kmod-usb2 kmod-ath10k-ct ath10k-firmware-qca988x-ct",
            ["librerouter,librerouter-v1"],
        ),
        device(
            SMALL_FLASH_DEVICE,
            [("TP-Link", "TL-WR842N", "v3")],
            "kmod-usb2 kmod-usb-ledtrig-usbport",
            ["tplink,tl-wr842n-v3"],
            limit=SMALL_FLASH_LIMIT,
        ),
        device(
            FACTORY_ONLY_DEVICE,
            [("TP-Link", "CPE510", "v1")],
            "",
            ["tplink,cpe510-v1"],
            images=(_FACTORY,),
            limit=7680 * KiB,
        ),
        device(
            NO_IMAGES_DEVICE,
            [("Ubiquiti", "Bullet M", "XW")],
            "",
            ["ubnt,bullet-m-xw"],
            images=(),
            limit=7552 * KiB,
        ),
    ),
)

LIBREMESH_VERSION = "2024.1"

LIBREMESH = DemoDistribution(
    "libremesh",
    (
        Release(
            LIBREMESH_VERSION,
            "24.10",
            "r28427-6df0e3d02a",
            1749000000,
            "opkg",
            2,
            True,
            "6.6.86",
            "zst",
            False,
            False,
            dist="libremesh",
        ),
    ),
    (_LIBREMESH_ATH79,),
    LIBREMESH_VERSION,
    "",
)

DISTRIBUTIONS: dict[str, DemoDistribution] = {OPENWRT.name: OPENWRT, LIBREMESH.name: LIBREMESH}
