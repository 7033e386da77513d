"""Targets and device profiles of the demo tree: real-looking titles, board names and image types.

The same targets exist in every release. Default packages are listed in build order (what ``make info``
prints); ``profiles.json`` sorts them.
"""

from __future__ import annotations

from dataclasses import dataclass

from asud.demo.releases import Release

__all__ = [
    "SMALL_FLASH_DEVICE",
    "SMALL_FLASH_LIMIT",
    "TARGETS",
    "DeviceDef",
    "ImageDef",
    "TargetDef",
    "make_device",
]


@dataclass(frozen=True, slots=True)
class ImageDef:
    """One image a profile produces; ``suffix`` follows ``<IMG_PREFIX>-<profile>-``."""

    type: str
    filesystem: str
    suffix: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "filesystem": self.filesystem, "suffix": self.suffix}


@dataclass(frozen=True, slots=True)
class DeviceDef:
    id: str
    titles: tuple[dict[str, str], ...]
    device_packages: tuple[str, ...]
    supported_devices: tuple[str, ...]
    images: tuple[ImageDef, ...]
    #: ``IMAGE_SIZE`` in bytes, or ``None`` for no limit (x86).
    image_limit: int | None

    @property
    def title(self) -> str:
        """The ``make info`` title line: the first title, ``vendor model variant``."""
        first = self.titles[0]
        if "title" in first:
            return first["title"]
        return " ".join(
            part for part in (first.get("vendor"), first.get("model"), first.get("variant")) if part
        )


@dataclass(frozen=True, slots=True)
class TargetDef:
    target: str
    arch_packages: str
    #: What ``make info`` prints as ``Current Architecture``.
    architecture: str
    filesystems: tuple[str, ...]
    #: Target-specific default packages, appended to the common list.
    extra_defaults: tuple[str, ...]
    devices: tuple[DeviceDef, ...]

    @property
    def board(self) -> str:
        return self.target.split("/")[0]

    @property
    def subtarget(self) -> str:
        return self.target.split("/")[1]

    def default_packages(self, release: Release) -> list[str]:
        """``DEFAULT_PACKAGES`` in build order for ``release``."""
        manager = "opkg" if release.package_manager == "opkg" else "apk-mbedtls"
        common = [
            "base-files",
            "ca-bundle",
            "dropbear",
            "fstools",
            "libc",
            "libgcc",
            "libustream-mbedtls",
            "logd",
            "mtd",
            "netifd",
            manager,
            "uci",
            "uclient-fetch",
            "urandom-seed",
            "urngd",
            "busybox",
            "procd",
            "procd-ujail",
            "procd-seccomp",
            "dnsmasq",
            "firewall4",
            "nftables",
            "kmod-nft-offload",
            "odhcp6c",
            "odhcpd-ipv6only",
            "ppp",
            "ppp-mod-pppoe",
        ]
        return common + list(self.extra_defaults)


KiB = 1024
_SYSUPGRADE_BIN = ImageDef("sysupgrade", "squashfs", "squashfs-sysupgrade.bin")
_FACTORY_BIN = ImageDef("factory", "squashfs", "squashfs-factory.bin")


def _device(
    id: str,
    titles: list[tuple[str, str, str]],
    packages: str,
    boards: list[str],
    images: tuple[ImageDef, ...] = (_SYSUPGRADE_BIN, _FACTORY_BIN),
    limit: int | None = 15744 * KiB,
) -> DeviceDef:
    title_dicts = tuple(
        {key: value for key, value in (("vendor", vendor), ("model", model), ("variant", variant)) if value}
        for vendor, model, variant in titles
    )
    return DeviceDef(id, title_dicts, tuple(packages.split()), tuple(boards), images, limit)


#: Public name of the device helper (other distributions' targets use it too).
make_device = _device

#: The ath79 device whose flash is small enough that ``python3-light`` does not fit (see docs).
SMALL_FLASH_DEVICE = "tplink_tl-wr842n-v3"
#: Room for kernel blob + default rootfs + LuCI (≈350 KiB images), not for ``python3-light`` (≈700 KiB).
SMALL_FLASH_LIMIT = 640 * KiB

_ATH79 = TargetDef(
    target="ath79/generic",
    arch_packages="mips_24kc",
    architecture="mips",
    filesystems=("squashfs",),
    extra_defaults=(
        "kmod-gpio-button-hotplug",
        "swconfig",
        "kmod-ath9k",
        "wpad-basic-mbedtls",
        "uboot-envtools",
    ),
    devices=(
        _device(
            "8dev_carambola2",
            [("8devices", "Carambola2", "")],
            "kmod-usb-chipidea2",
            ["8dev,carambola2", "carambola2"],
            limit=16000 * KiB,
        ),
        _device(
            "buffalo_wzr-hp-ag300h",
            [("Buffalo", "WZR-HP-AG300H", ""), ("Buffalo", "WZR-600DHP", "")],
            "kmod-usb2 kmod-usb-ledtrig-usbport",
            ["buffalo,wzr-hp-ag300h"],
            limit=32256 * KiB,
        ),
        _device(
            "glinet_gl-ar150",
            [("GL.iNet", "GL-AR150", "")],
            "kmod-usb-chipidea2",
            ["glinet,gl-ar150", "gl-ar150"],
        ),
        _device(
            "netgear_wndr3700-v2",
            [("NETGEAR", "WNDR3700", "v2")],
            "kmod-usb2 kmod-usb-ledtrig-usbport kmod-leds-reset",
            ["netgear,wndr3700-v2"],
        ),
        _device(
            "tplink_archer-c7-v2",
            [("TP-Link", "Archer C7", "v2")],
            "kmod-usb2 kmod-usb-ledtrig-usbport kmod-ath10k-ct ath10k-firmware-qca988x-ct",
            ["tplink,archer-c7-v2"],
        ),
        _device(
            "tplink_archer-c7-v5",
            [("TP-Link", "Archer C7", "v5"), ("TP-Link", "Archer A7", "v5")],
            "kmod-usb2 kmod-usb-ledtrig-usbport kmod-ath10k-ct ath10k-firmware-qca988x-ct",
            ["tplink,archer-c7-v5", "tplink,archer-a7-v5"],
        ),
        _device(
            SMALL_FLASH_DEVICE,
            [("TP-Link", "TL-WR842N", "v3")],
            "kmod-usb2 kmod-usb-ledtrig-usbport",
            ["tplink,tl-wr842n-v3"],
            limit=SMALL_FLASH_LIMIT,
        ),
        _device(
            "ubnt_unifiac-lite",
            [("Ubiquiti", "UniFi AC Lite", "")],
            "kmod-ath10k-ct ath10k-firmware-qca988x-ct",
            ["ubnt,unifiac-lite"],
            images=(_SYSUPGRADE_BIN,),
        ),
    ),
)

_FILOGIC = TargetDef(
    target="mediatek/filogic",
    arch_packages="aarch64_cortex-a53",
    architecture="aarch64",
    filesystems=("squashfs",),
    extra_defaults=("kmod-gpio-button-hotplug", "wpad-basic-mbedtls", "uboot-envtools"),
    devices=(
        _device(
            "bananapi_bpi-r3",
            [("Bananapi", "BPi-R3", "")],
            "kmod-hwmon-pwmfan kmod-i2c-gpio kmod-mt7915e kmod-mt7986-firmware kmod-usb3",
            ["bananapi,bpi-r3"],
            images=(
                ImageDef("sysupgrade", "squashfs", "squashfs-sysupgrade.itb"),
                ImageDef("sdcard", "squashfs", "sdcard.img.gz"),
            ),
            limit=None,
        ),
        _device(
            "glinet_gl-mt6000",
            [("GL.iNet", "GL-MT6000", "")],
            "kmod-hwmon-pwmfan kmod-mt7915e kmod-mt7986-firmware kmod-usb3",
            ["glinet,gl-mt6000"],
            images=(_SYSUPGRADE_BIN,),
            limit=None,
        ),
        _device(
            "xiaomi_mi-router-ax3000t",
            [("Xiaomi", "Mi Router AX3000T", "")],
            "kmod-mt7915e kmod-mt7981-firmware",
            ["xiaomi,mi-router-ax3000t"],
            images=(_SYSUPGRADE_BIN, ImageDef("factory", "squashfs", "squashfs-factory.ubi")),
            limit=None,
        ),
        _device(
            "cudy_wr3000-v1",
            [("Cudy", "WR3000", "v1")],
            "kmod-mt7915e kmod-mt7981-firmware",
            ["cudy,wr3000-v1"],
        ),
    ),
)


def _x86_images() -> tuple[ImageDef, ...]:
    return tuple(
        ImageDef(kind, fs, f"{fs}-{kind}.img.gz")
        for fs in ("ext4", "squashfs")
        for kind in ("combined", "combined-efi")
    )


_X86 = TargetDef(
    target="x86/64",
    arch_packages="x86_64",
    architecture="x86_64",
    filesystems=("squashfs", "ext4"),
    extra_defaults=("partx-utils", "mkf2fs", "e2fsprogs", "grub2-bios-setup", "kmod-button-hotplug"),
    devices=(
        DeviceDef(
            "generic",
            ({"title": "Generic x86/64"},),
            ("kmod-e1000e", "kmod-igc", "kmod-r8169"),
            (),
            _x86_images(),
            None,
        ),
    ),
)

TARGETS: tuple[TargetDef, ...] = (_X86, _ATH79, _FILOGIC)
