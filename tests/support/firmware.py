"""Look inside firmware images the (miniature) ImageBuilder writes, for tests of any stage.

Handles every layout of ``sysup/demo_upstream/imagebuilder/scripts/mini_ib_images.py``: gzipped or raw
MBR disk images (rootfs = partition 2), sysupgrade tars (``sysupgrade-*/root``), factory images
(``MINIFACT`` header) and bare squashfs/ext4 filesystems. Needs ``unsquashfs`` and ``debugfs``.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path

SECTOR = 512
FACTORY_HEADER = struct.Struct(">8sIIII40s")
EXT4_MAGIC_OFFSET = 1080


def _image_bytes(image: Path) -> bytes:
    data = image.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def partitions(image: Path) -> list[tuple[int, int, int, bool]]:
    """The MBR entries (type, first LBA, sector count, bootable) of a disk image (gzipped or not)."""
    data = _image_bytes(image)
    if data[510:512] != b"\x55\xaa":
        raise ValueError(f"{image.name} has no MBR")
    entries = []
    for index in range(4):
        status, _, kind, _, start, count = struct.unpack_from("<B3sB3sII", data, 446 + 16 * index)
        if kind:
            entries.append((kind, start, count, status == 0x80))
    return entries


def image_kind(image: Path) -> str:
    """``disk``, ``sysupgrade``, ``factory``, ``squashfs`` or ``ext4``."""
    data = _image_bytes(image)
    if data[:4] == b"hsqs":
        return "squashfs"
    if len(data) > EXT4_MAGIC_OFFSET + 2 and data[EXT4_MAGIC_OFFSET : EXT4_MAGIC_OFFSET + 2] == b"\x53\xef":
        return "ext4"
    if data[:8] == b"MINIFACT":
        return "factory"
    if data[510:512] == b"\x55\xaa":
        return "disk"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "sysupgrade"
    raise ValueError(f"unknown image layout: {image.name}")


def _parts(image: Path) -> tuple[bytes, bytes]:
    """(kernel, rootfs filesystem bytes) of any image."""
    data = _image_bytes(image)
    kind = image_kind(image)
    if kind in ("squashfs", "ext4"):
        return b"", data
    if kind == "factory":
        _, _, kernel_size, offset, size, _ = FACTORY_HEADER.unpack_from(data)
        return data[FACTORY_HEADER.size : FACTORY_HEADER.size + kernel_size], data[offset : offset + size]
    if kind == "disk":
        (_, boot_start, boot_count, _), (_, start, count, _) = partitions(image)[:2]
        boot = data[boot_start * SECTOR : (boot_start + boot_count) * SECTOR]
        return boot.rstrip(b"\0"), data[start * SECTOR : (start + count) * SECTOR]
    with tarfile.open(image) as archive:
        members = {m.name.split("/", 1)[-1]: m for m in archive.getmembers() if m.isfile()}
        kernel = archive.extractfile(members["kernel"])
        root = archive.extractfile(members["root"])
        assert kernel is not None and root is not None
        return kernel.read(), root.read()


def read_kernel(image: Path) -> bytes:
    """The kernel stored in an image (trailing zero padding of a disk partition removed)."""
    return _parts(image)[0]


def rootfs_filesystem(image: Path) -> str:
    """``squashfs`` or ``ext4``: the filesystem inside ``image``."""
    rootfs = _parts(image)[1]
    if rootfs[:4] == b"hsqs":
        return "squashfs"
    if rootfs[EXT4_MAGIC_OFFSET : EXT4_MAGIC_OFFSET + 2] == b"\x53\xef":
        return "ext4"
    raise ValueError(f"no known filesystem in {image.name}")


def extract_rootfs(image: Path, dest: Path) -> Path:
    """Unpack the root filesystem of ``image`` into ``dest`` (created; must not exist) and return it."""
    rootfs = _parts(image)[1]
    filesystem = rootfs_filesystem(image)
    with tempfile.TemporaryDirectory() as work:
        fs_file = Path(work) / f"root.{filesystem}"
        fs_file.write_bytes(rootfs)
        if filesystem == "squashfs":
            subprocess.run(
                ["unsquashfs", "-q", "-n", "-no-xattrs", "-d", str(dest), str(fs_file)],
                check=True,
                capture_output=True,
            )
        else:
            dest.mkdir(parents=True)
            subprocess.run(
                ["debugfs", "-R", f"rdump / {dest}", str(fs_file)], check=True, capture_output=True
            )
            # rdump of "/" lands the tree in dest/ itself on e2fsprogs 1.47; keep lost+found out of listings.
            lost = dest / "lost+found"
            if lost.is_dir() and not any(lost.iterdir()):
                lost.rmdir()
    return dest


def list_files(image_or_dir: Path) -> list[str]:
    """Sorted absolute paths (``/etc/banner``) of every file, link and directory in an image's rootfs."""
    if image_or_dir.is_dir():
        root = image_or_dir
        return sorted("/" + p.relative_to(root).as_posix() for p in root.rglob("*"))
    with tempfile.TemporaryDirectory() as work:
        return list_files(extract_rootfs(image_or_dir, Path(work) / "root"))


def read_file(image: Path, path: str) -> bytes:
    """The content of ``path`` inside an image's rootfs (symlinks within the rootfs followed)."""
    with tempfile.TemporaryDirectory() as work:
        root = extract_rootfs(image, Path(work) / "root")
        target = root / path.lstrip("/")
        for _ in range(16):
            if not target.is_symlink():
                break
            link = os.readlink(target)
            target = (root / link.lstrip("/")) if link.startswith("/") else target.parent / link
        return target.read_bytes()
