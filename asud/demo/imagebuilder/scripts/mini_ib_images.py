"""Firmware images from a staged root filesystem: squashfs, ext4, MBR disk images, sysupgrade tars
and factory images, named as the real ``include/image.mk`` names them.

Layouts (``tests/support/firmware.py`` reads them back):

* ``combined``/``combined-efi``/``sdcard``: a disk image with an MBR; partition 1 (bootable, type 0x83,
  0xef for EFI) holds the kernel, partition 2 (0x83) the rootfs filesystem; gzipped when named ``.gz``.
* ``sysupgrade``: the sysupgrade tar (``sysupgrade-<device>/CONTROL``, ``kernel``, ``root``).
* ``factory`` and anything else: a 64-byte header (``FACTORY_HEADER``), the kernel, then the rootfs
  at the next 64 KiB boundary.
* ``rootfs``: the bare filesystem image; ``kernel``: the kernel blob.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
import uuid
from pathlib import Path

SECTOR = 512
MIB = 1024 * 1024
BOOT_PARTITION_MB = 16
FIRST_SECTOR = 512
FACTORY_MAGIC = b"MINIFACT"
#: magic, header version, kernel size, rootfs offset, rootfs size, device name (NUL padded); 64 bytes.
FACTORY_HEADER = struct.Struct(">8sIIII40s")
FACTORY_ALIGN = 64 * 1024
DISK_TYPES = ("combined", "combined-efi", "sdcard")


class ImageError(Exception):
    """An image could not be built; ``str()`` is the text shown on stderr."""


class OutOfSpace(ImageError):
    """The content does not fit the ext4 partition (``blocks`` that could not be allocated)."""

    def __init__(self, blocks: int, target: Path) -> None:
        super().__init__(
            f"error: ext4_allocate_best_fit_partial: failed to allocate {blocks} blocks, out of space?"
        )
        self.blocks = blocks
        self.target = target


def sanitize(text: str) -> str:
    """image.mk's ``sanitize``: spaces and ``_`` → ``-``, lowercase."""
    return text.replace(" ", "-").replace("_", "-").lower()


def img_prefix(dist: str, version: str, with_version: bool, extra: str, target: str) -> str:
    """``IMG_PREFIX``: ``<dist>-[<version>-][<extra>-]<board>-<subtarget>``."""
    board, _, subtarget = target.partition("/")
    parts = [sanitize(dist)]
    if with_version:
        parts.append(sanitize(version))
    if extra:
        parts.append(sanitize(extra))
    parts.append(board)
    if subtarget:
        parts.append(subtarget)
    return "-".join(parts)


def build_squashfs(root: Path, output: Path, epoch: int) -> None:
    command = [
        "mksquashfs",
        str(root),
        str(output),
        "-noappend",
        "-all-root",
        "-no-progress",
        "-quiet",
        "-comp",
        "xz",
        "-b",
        "256K",
        "-mkfs-time",
        str(epoch),
        "-all-time",
        str(epoch),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageError(f"mksquashfs failed: {result.stderr.strip() or result.stdout.strip()}")


def _needed_blocks(root: Path, block_size: int) -> int:
    blocks = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            blocks += max(1, -(-path.stat().st_size // block_size))
        else:
            blocks += 1
    return blocks


def build_ext4(root: Path, output: Path, size_mb: int, epoch: int, label: str) -> None:
    """An ext4 of exactly ``size_mb`` MiB holding ``root``, without journal, as make_ext4fs -J would."""
    block_size = 4096
    blocks = size_mb * MIB // block_size
    fs_uuid = str(uuid.UUID(bytes=hashlib.sha256(label.encode()).digest()[:16]))
    if output.exists():
        output.unlink()
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(epoch))
    command = [
        "mke2fs",
        "-q",
        "-F",
        "-t",
        "ext4",
        "-b",
        str(block_size),
        "-m",
        "0",
        "-O",
        "^has_journal",
        "-L",
        "rootfs",
        "-U",
        fs_uuid,
        "-E",
        f"root_owner=0:0,hash_seed={fs_uuid}",
        "-d",
        str(root),
        str(output),
        str(blocks),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        text = result.stderr + result.stdout
        if "allocate" in text or "space" in text or "inode" in text.lower():
            raise OutOfSpace(max(1, _needed_blocks(root, block_size) - blocks // 2), output)
        raise ImageError(f"mke2fs failed: {text.strip()}")
    _chown_root(root, output, env)


def _chown_root(root: Path, image: Path, env: dict[str, str]) -> None:
    """mke2fs -d copies the builder's uid/gid; make every inode root-owned as the real images are."""
    if os.getuid() == 0 or shutil.which("debugfs") is None:
        return
    commands = []
    for path in sorted(root.rglob("*")):
        inner = "/" + path.relative_to(root).as_posix()
        quoted = '"' + inner.replace('"', '\\"') + '"'
        commands.append(f"sif {quoted} uid 0\nsif {quoted} gid 0\n")
    script = image.with_suffix(".debugfs")
    script.write_text("".join(commands))
    subprocess.run(
        ["debugfs", "-w", "-f", str(script), str(image)], capture_output=True, env=env, check=False
    )
    script.unlink()


def _mbr(partitions: list[tuple[int, int, int, bool]], signature: bytes) -> bytes:
    """A master boot record with (type, first LBA, sector count, bootable) entries."""
    table = b""
    for kind, start, count, bootable in partitions:
        table += struct.pack(
            "<B3sB3sII", 0x80 if bootable else 0, b"\xfe\xff\xff", kind, b"\xfe\xff\xff", start, count
        )
    table = table.ljust(64, b"\0")
    return b"\0" * 440 + signature[:4] + b"\0\0" + table + b"\x55\xaa"


def _write_padded(out: io.BufferedIOBase, source: Path | bytes, total: int) -> None:
    written = 0
    if isinstance(source, bytes):
        out.write(source)
        written = len(source)
    else:
        with source.open("rb") as handle:
            while chunk := handle.read(MIB):
                out.write(chunk)
                written += len(chunk)
    zeros = b"\0" * MIB
    while written < total:
        step = min(MIB, total - written)
        out.write(zeros[:step])
        written += step


def disk_image(kernel: bytes, rootfs: Path, rootfs_mb: int, output: Path, efi: bool, compress: bool) -> None:
    boot_sectors = BOOT_PARTITION_MB * MIB // SECTOR
    root_bytes = max(rootfs_mb * MIB, -(-rootfs.stat().st_size // MIB) * MIB)
    if rootfs.stat().st_size > rootfs_mb * MIB:
        raise ImageError(f"rootfs image {rootfs.name} is larger than the {rootfs_mb} MB rootfs partition")
    root_start = FIRST_SECTOR + boot_sectors
    signature = hashlib.sha256(output.name.encode()).digest()
    mbr = _mbr(
        [
            (0xEF if efi else 0x83, FIRST_SECTOR, boot_sectors, True),
            (0x83, root_start, root_bytes // SECTOR, False),
        ],
        signature,
    )
    with output.open("wb") as raw:
        out: io.BufferedIOBase = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compress else raw
        )
        _write_padded(out, mbr, FIRST_SECTOR * SECTOR)
        _write_padded(out, kernel, boot_sectors * SECTOR)
        _write_padded(out, rootfs, root_bytes)
        if compress:
            out.close()


def _tar_member(archive: tarfile.TarFile, name: str, data: bytes | None, epoch: int) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        archive.addfile(info)
    else:
        info.size = len(data)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(data))


def sysupgrade_tar(device: str, kernel: bytes, rootfs: Path, output: Path, epoch: int) -> None:
    top = f"sysupgrade-{device}"
    with tarfile.open(output, "w", format=tarfile.GNU_FORMAT) as archive:
        _tar_member(archive, f"{top}/", None, epoch)
        _tar_member(archive, f"{top}/CONTROL", f"BOARD={device}\n".encode(), epoch)
        _tar_member(archive, f"{top}/kernel", kernel, epoch)
        _tar_member(archive, f"{top}/root", rootfs.read_bytes(), epoch)


def factory_image(device: str, kernel: bytes, rootfs: Path, output: Path) -> None:
    rootfs_data = rootfs.read_bytes()
    offset = -(-(FACTORY_HEADER.size + len(kernel)) // FACTORY_ALIGN) * FACTORY_ALIGN
    header = FACTORY_HEADER.pack(
        FACTORY_MAGIC, 1, len(kernel), offset, len(rootfs_data), device.encode()[:40]
    )
    with output.open("wb") as out:
        out.write(header)
        out.write(kernel)
        out.write(b"\xff" * (offset - FACTORY_HEADER.size - len(kernel)))
        out.write(rootfs_data)


def build_image(
    kind: str, device: str, kernel: bytes, rootfs: Path, rootfs_mb: int, output: Path, epoch: int
) -> None:
    """Write one image of type ``kind``; a name ending in ``.gz`` gets gzipped (``gzip -9n``)."""
    compress = output.name.endswith(".gz")
    if kind in DISK_TYPES:
        disk_image(kernel, rootfs, rootfs_mb, output, kind == "combined-efi", compress)
        return
    plain = output.with_name(output.name[:-3]) if compress else output
    if kind == "sysupgrade":
        sysupgrade_tar(device, kernel, rootfs, plain, epoch)
    elif kind == "rootfs":
        shutil.copyfile(rootfs, plain)
    elif kind == "kernel":
        plain.write_bytes(kernel)
    else:
        factory_image(device, kernel, rootfs, plain)
    if compress:
        with (
            plain.open("rb") as source,
            output.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            shutil.copyfileobj(source, out)
        plain.unlink()
