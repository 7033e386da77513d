"""Rewrite the ``apk-25.12.1`` fake router template from the demo upstream (run by hand, not by pytest).

    .venv/bin/python tests/clients/fake_router/record_apk_root.py

Builds a TP-Link Archer C7 v5 image of 25.12.1 with the demo ImageBuilder (its default and device packages
plus ``luci``), unpacks the root filesystem of the sysupgrade image and keeps what the router client reads:
``/lib/apk/db/installed``, ``/etc/apk/world``, ``/etc/openwrt_release`` and the ``ubus call system board``
answer such a device gives. So every version in the template exists in the demo 25.12.1 index.

Two corrections make the files what apk on a real device writes: ``/etc/apk/world`` holds the names the
ImageBuilder was asked for (``apk add --initdb $(BUILD_PACKAGES)`` records those, virtual ones such as
``nftables`` included, where the demo IB records the packages it resolved them to), and ``A:`` carries the
architecture and the demo IB's stray ``.PKGINFO`` file entries are dropped.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
from pathlib import Path

from asud.demo.generator import generate_tree
from sysup.demo_upstream.server import running_upstream

VERSION = "25.12.1"
TARGET = "ath79/generic"
PROFILE = "tplink_archer-c7-v5"
EXTRA = ["luci"]
TEMPLATE = Path(__file__).parent / "apk-25.12.1"
OPKG_TEMPLATE = Path(__file__).parent / "opkg-24.10.4"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        port = _free_port()
        generate_tree(scratch / "tree", seed=1, base_url=f"http://127.0.0.1:{port}")
        target_dir = scratch / "tree" / "releases" / VERSION / "targets" / TARGET
        profiles = json.loads((target_dir / "profiles.json").read_text())
        (archive,) = target_dir.glob("openwrt-imagebuilder-*.tar.zst")
        subprocess.run(["tar", "-C", str(scratch), "--zstd", "-xf", str(archive)], check=True)
        (builder,) = scratch.glob("openwrt-imagebuilder-*/")
        bin_dir = scratch / "bin"
        with running_upstream(scratch / "tree", port=port):
            subprocess.run(
                ["make", "image", f"PROFILE={PROFILE}", f"PACKAGES={' '.join(EXTRA)}", f"BIN_DIR={bin_dir}"],
                cwd=builder, check=True, capture_output=True,
            )  # fmt: skip
        (image,) = bin_dir.glob("*-squashfs-sysupgrade.bin")
        with tarfile.open(image) as sysupgrade:
            sysupgrade.extractall(scratch / "image", filter="data")
        (root_image,) = (scratch / "image").glob("*/root")
        rootfs = scratch / "rootfs"
        unsquashfs = ["unsquashfs", "-q", "-d", str(rootfs), str(root_image)]
        subprocess.run(unsquashfs, check=True, capture_output=True)

        if TEMPLATE.exists():
            shutil.rmtree(TEMPLATE)
        (TEMPLATE / "etc/config").mkdir(parents=True)
        (TEMPLATE / "etc/apk").mkdir()
        (TEMPLATE / "lib/apk/db").mkdir(parents=True)
        (TEMPLATE / "recorded").mkdir()
        shutil.copy2(OPKG_TEMPLATE / "etc/config/attendedsysupgrade", TEMPLATE / "etc/config")
        shutil.copy2(rootfs / "etc/openwrt_release", TEMPLATE / "etc/openwrt_release")
        requested = profiles["default_packages"] + profiles["profiles"][PROFILE]["device_packages"] + EXTRA
        (TEMPLATE / "etc/apk/world").write_text("".join(f"{name}\n" for name in sorted(set(requested))))
        installed = (rootfs / "lib/apk/db/installed").read_text()
        installed = installed.replace("\nF:\nR:.PKGINFO\n", "\n")
        installed = re.sub(r"^A:$", f"A:{profiles['arch_packages']}", installed, flags=re.MULTILINE)
        (TEMPLATE / "lib/apk/db/installed").write_text(installed)

        kernel = profiles["linux_kernel"]["version"]
        board = {
            "kernel": kernel,
            "hostname": "OpenWrt",
            "system": "Qualcomm Atheros QCA956X ver 1 rev 0",
            "model": "TP-Link Archer C7 v5",
            "board_name": "tplink,archer-c7-v5",
            "rootfs_type": "squashfs",
            "release": {
                "distribution": "OpenWrt",
                "version": VERSION,
                "revision": profiles["version_code"],
                "target": TARGET,
                "description": f"OpenWrt {VERSION} {profiles['version_code']}",
                "builddate": str(profiles["source_date_epoch"]),
            },
        }
        (TEMPLATE / "recorded/ubus-call-system-board.json").write_text(json.dumps(board, indent="\t") + "\n")


if __name__ == "__main__":
    main()
