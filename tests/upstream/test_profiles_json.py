"""``profiles.json`` shapes across eras (the real files are read in test_samples)."""

from __future__ import annotations

import orjson
import pytest

from asud.upstream.errors import UpstreamFormatError
from asud.upstream.profiles_json import parse_profile_entry, parse_profiles_json

CURRENT = {
    "arch_packages": "aarch64_cortex-a53",
    "default_packages": ["apk-mbedtls", "base-files"],
    "linux_kernel": {"release": "1", "vermagic": "a7bc15f451f9652701ba04af9cfb0b95", "version": "6.12.94"},
    "metadata_version": 1,
    "profiles": {
        "glinet_gl-mt6000": {
            "device_packages": ["kmod-usb3"],
            "file_size_limits": {"image": 8388608, "kernel": 4194304},
            "image_prefix": "openwrt-25.12.1-mediatek-filogic-glinet_gl-mt6000",
            "images": [{"filesystem": "squashfs", "name": "x-squashfs-sysupgrade.bin", "sha256": "a" * 64,
                        "sha256_unsigned": "b" * 64, "size": 1234, "type": "sysupgrade"}],
            "supported_devices": ["glinet,gl-mt6000"],
            "titles": [{"model": "GL-MT6000", "vendor": "GL.iNet"}],
        }
    },
    "source_date_epoch": 1750000000,
    "target": "mediatek/filogic",
    "version_code": "r29000-0123456789",
    "version_number": "25.12.1",
    "git_commit": "f" * 40,
}


def test_current_shape() -> None:
    doc = parse_profiles_json(orjson.dumps(CURRENT))
    assert doc.linux_kernel is not None
    assert doc.linux_kernel.kmods_dir == "6.12.94-1-a7bc15f451f9652701ba04af9cfb0b95"
    profile = doc.profiles["glinet_gl-mt6000"]
    assert profile.file_size_limits == {"image": 8388608, "kernel": 4194304}
    assert profile.images[0].size == 1234 and profile.images[0].sha256_unsigned == "b" * 64
    assert doc.raw["git_commit"] == "f" * 40  # unknown keys survive for passing on


def test_old_shapes() -> None:
    old = dict(CURRENT, source_date_epoch="1612136917", default_packages=["a", "b", "a"])
    del old["linux_kernel"]
    entry = dict(CURRENT["profiles"]["glinet_gl-mt6000"], title="Old Title")  # type: ignore[arg-type]
    del entry["titles"]
    entry["images"] = [{"name": "x.bin", "sha256": "c" * 64, "type": "sysupgrade"}]
    old["profiles"] = {"old": entry}
    doc = parse_profiles_json(orjson.dumps(old).decode())
    assert doc.source_date_epoch == 1612136917
    assert doc.linux_kernel is None
    assert doc.default_packages == ("a", "b")
    assert doc.profiles["old"].titles == ({"title": "Old Title"},)
    image = doc.profiles["old"].images[0]
    assert image.sha256_unsigned == image.sha256 == "c" * 64 and image.filesystem is None


def test_refuses_broken_documents() -> None:
    with pytest.raises(UpstreamFormatError):
        parse_profiles_json(b"[1, 2]")
    with pytest.raises(UpstreamFormatError):
        parse_profiles_json(b"{not json")
    with pytest.raises(UpstreamFormatError):
        parse_profiles_json(orjson.dumps(dict(CURRENT, source_date_epoch="yesterday")))
    with pytest.raises(UpstreamFormatError):
        parse_profile_entry("x", {"images": [{"sha256": "no name"}]})
