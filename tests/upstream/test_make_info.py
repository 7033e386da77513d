"""``make info`` output of every era."""

from __future__ import annotations

import pytest

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.make_info import parse_make_info

CURRENT = """\
Current Target: "ath79/generic"
Current Architecture: "mips"
Current Revision: "r28959-29397011cc"
Default Packages: base-files busybox opkg swconfig
Available Profiles:

tplink_archer-c7-v5:
    TP-Link Archer C7 v5
    Packages: kmod-ath10k-ct ath10k-firmware-qca988x-ct -swconfig
    hasImageMetadata: 1
    SupportedDevices: tplink,archer-c7-v5 archer-c7-v5
untitled_device:
    Packages:
    hasImageMetadata: 0
"""


def test_current_output() -> None:
    info = parse_make_info(CURRENT)
    assert (info.target, info.architecture, info.revision) == ("ath79/generic", "mips", "r28959-29397011cc")
    assert info.default_packages == ("base-files", "busybox", "opkg", "swconfig")
    archer = info.profiles["tplink_archer-c7-v5"]
    assert archer.title == "TP-Link Archer C7 v5"
    assert archer.packages == ("kmod-ath10k-ct", "ath10k-firmware-qca988x-ct", "-swconfig")
    assert archer.has_image_metadata
    assert archer.supported_devices == ("tplink,archer-c7-v5", "archer-c7-v5")
    untitled = info.profiles["untitled_device"]
    assert (untitled.title, untitled.packages, untitled.has_image_metadata, untitled.supported_devices) == (
        "", (), False, ())


def test_old_output_without_architecture() -> None:
    old = CURRENT.replace('Current Architecture: "mips"\n', "")
    assert parse_make_info(old).architecture is None


def test_refuses_other_text() -> None:
    with pytest.raises(UpstreamFormatError):
        parse_make_info("make: *** No rule to make target 'info'.  Stop.\n")
    with pytest.raises(UpstreamFormatError):
        parse_make_info(CURRENT + "not a profile line\n")
