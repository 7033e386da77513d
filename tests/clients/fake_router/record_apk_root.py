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

The tree is served by asud's demo download server (``python -m asud demo-upstream serve``) on a port it
picks; the packages' sizes (``S:``) move by a byte or two with the length of that URL, nothing else does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asud.demo.generator import generate_tree

VERSION = "25.12.1"
TARGET = "ath79/generic"
PROFILE = "tplink_archer-c7-v5"
EXTRA = ["luci"]
TEMPLATE = Path(__file__).parent / "apk-25.12.1"
OPKG_TEMPLATE = Path(__file__).parent / "opkg-24.10.4"


@contextmanager
def demo_upstream(root: Path, log: Path, timeout: float = 30.0) -> Iterator[str]:
    """asud's demo download server (``python -m asud demo-upstream serve``) on ``root``, on a port of
    127.0.0.1 it picks itself; yields its URL (the tree is written after it listens, with that URL)."""
    root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "asud", "demo-upstream", "serve", str(root),
               "--listen", "tcp:0:interface=127.0.0.1"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not (found := re.search(r"^serving .* at (http://\S+)$", log.read_text(), re.MULTILINE)):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the demo upstream did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield found.group(1)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        with demo_upstream(scratch / "tree", scratch / "upstream.log") as url:
            build(scratch, url)


def build(scratch: Path, url: str) -> None:
    """The image from the demo tree served at ``url``, and the template from its root filesystem."""
    generate_tree(scratch / "tree", seed=1, base_url=url)
    target_dir = scratch / "tree" / "releases" / VERSION / "targets" / TARGET
    profiles = json.loads((target_dir / "profiles.json").read_text())
    (archive,) = target_dir.glob("openwrt-imagebuilder-*.tar.zst")
    subprocess.run(["tar", "-C", str(scratch), "--zstd", "-xf", str(archive)], check=True)
    (builder,) = scratch.glob("openwrt-imagebuilder-*/")
    bin_dir = scratch / "bin"
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
