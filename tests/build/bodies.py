"""Build request bodies as real clients send them (LuCI, the Firmware Selector), shared by the tests."""

from __future__ import annotations

from typing import Any

LUCI: dict[str, Any] = {
    "client": "luci/25.010",
    "packages": ["luci", "-wpad-basic-mbedtls"],
    "profile": "tplink,archer-c7-v5",
    "target": "ath79/generic",
    "version": "24.10.4",
    "diff_packages": True,
    "filesystem": "squashfs",
    "rootfs_size_mb": None,
}
OFS: dict[str, Any] = {
    "profile": "generic", "target": "x86/64", "packages": ["luci"], "defaults": "", "version_code": "",
    "version": "24.10.4", "diff_packages": True, "client": "ofs/v5", "repositories": {},
    "repository_keys": [],
}
