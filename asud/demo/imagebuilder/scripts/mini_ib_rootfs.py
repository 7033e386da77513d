"""Building the root filesystem tree: package payloads, package-manager state, release files,
the FILES overlay and enabled/disabled services — what the real IB's package_install and
prepare_rootfs leave in TARGET_DIR.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath

from mini_ib_feeds import Package, ipk_parts

_CONTROL_SCRIPTS = ("postinst", "prerm", "preinst", "postrm", "conffiles")


def _safe_target(root: Path, name: str) -> Path | None:
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".", "/")]
    if not parts or ".." in parts:
        return None
    return root.joinpath(*parts)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def extract_tar(data: bytes, root: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """Extract a gzip tar into ``root`` without following links out of it; returns the paths written.

    Written by hand because the sandbox's Python may predate tarfile extraction filters.
    """
    written: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.name.removeprefix("./").lstrip("/") in skip:
                continue
            target = _safe_target(root, member.name)
            if target is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            relative = "/" + target.relative_to(root).as_posix()
            if member.isdir():
                if target.is_symlink() or target.is_file():
                    target.unlink()
                target.mkdir(exist_ok=True)
                target.chmod(member.mode & 0o7777 | stat.S_IRWXU)
                continue
            if target.is_symlink() or target.exists():
                _remove(target)
            if member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                source = _safe_target(root, member.linkname)
                if source is not None and source.is_file():
                    shutil.copy2(source, target)
            elif member.isfile():
                handle = archive.extractfile(member)
                target.write_bytes(handle.read() if handle else b"")
                target.chmod(member.mode & 0o7777 | stat.S_IRUSR | stat.S_IWUSR)
            else:
                continue
            written.append(relative)
    return written


def install_package(package: Package, data: bytes, root: Path, apk: bool) -> list[str]:
    """Unpack one package's files into ``root`` (ipk: its data.tar.gz; demo apk: the tar minus .PKGINFO)."""
    if apk:
        return extract_tar(data, root, skip=(".PKGINFO",))
    _, payload = ipk_parts(data)
    return extract_tar(payload, root)


def write_opkg_state(
    root: Path,
    packages: list[Package],
    user: set[str],
    control_files: dict[str, dict[str, bytes]],
    file_lists: dict[str, list[str]],
    installed_time: int,
) -> None:
    """``/usr/lib/opkg/status`` and ``/usr/lib/opkg/info/<pkg>.{control,list,postinst…}``."""
    info = root / "usr/lib/opkg/info"
    info.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for package in sorted(packages, key=lambda p: p.name):
        lines = [f"Package: {package.name}", f"Version: {package.version}"]
        control = package.control or control_files.get(package.name, {}).get("control", b"").decode()
        fields = dict(re.findall(r"^(Depends|Provides|Conflicts|ABIVersion): (.*)$", control, re.MULTILINE))
        for key in ("Depends", "Conflicts", "Provides"):
            if fields.get(key):
                lines.append(f"{key}: {fields[key]}")
        flag = "user" if package.name in user else "ok"
        lines.append(f"Status: install {flag} installed")
        lines.append(f"Architecture: {package.architecture}")
        if fields.get("ABIVersion"):
            lines.append(f"ABIVersion: {fields['ABIVersion']}")
        lines.append(f"Installed-Time: {installed_time}")
        stanzas.append("\n".join(lines) + "\n")
        scripts = control_files.get(package.name, {})
        control_text = scripts.get("control", b"").decode() or _control_from_index(package)
        (info / f"{package.name}.control").write_text(control_text)
        (info / f"{package.name}.list").write_text(
            "".join(f"{path}\n" for path in file_lists.get(package.name, []))
        )
        for script in _CONTROL_SCRIPTS:
            if script in scripts:
                path = info / f"{package.name}.{script}"
                path.write_bytes(scripts[script])
                path.chmod(0o755)
    (root / "usr/lib/opkg/status").write_text("\n".join(stanzas))


def _control_from_index(package: Package) -> str:
    keep = (
        "Package",
        "Version",
        "Depends",
        "Conflicts",
        "Provides",
        "Source",
        "SourceName",
        "License",
        "Section",
        "ABIVersion",
        "Architecture",
        "Installed-Size",
        "Description",
    )
    lines = [
        line for line in package.control.splitlines() if line.split(":", 1)[0] in keep or line.startswith(" ")
    ]
    return "\n".join(lines) + "\n"


def write_apk_state(
    root: Path, packages: list[Package], world: list[str], file_lists: dict[str, list[str]]
) -> None:
    """``/lib/apk/db/installed`` (apk v2 text form) and ``/etc/apk/world``."""
    db = root / "lib/apk/db"
    db.mkdir(parents=True, exist_ok=True)
    blocks = []
    for package in sorted(packages, key=lambda p: p.name):
        lines = [
            f"P:{package.name}",
            f"V:{package.version}",
            f"A:{package.architecture}",
            f"S:{package.size}",
            f"I:{package.installed_size}",
            f"T:{package.description.splitlines()[0] if package.description else ''}",
        ]
        depends = [_apk_dep(group[0]) for group in package.depends]
        if depends:
            lines.append("D:" + " ".join(depends))
        provides = [f"{n}={v}" if v else n for n, v in package.provides]
        if provides:
            lines.append("p:" + " ".join(provides))
        current_dir = None
        for path in file_lists.get(package.name, []):
            directory, _, name = path.lstrip("/").rpartition("/")
            if directory != current_dir:
                lines.append(f"F:{directory}")
                current_dir = directory
            lines.append(f"R:{name}")
        blocks.append("\n".join(lines) + "\n")
    (db / "installed").write_text("\n".join(blocks) + "\n")
    apk_dir = root / "etc/apk"
    apk_dir.mkdir(parents=True, exist_ok=True)
    (apk_dir / "world").write_text("".join(f"{name}\n" for name in sorted(set(world))))


def _apk_dep(relation: tuple[str, str | None, str | None]) -> str:
    name, op, version = relation
    return f"{name}{op}{version}" if op else name


def write_release_files(root: Path, info: dict) -> None:
    """``/etc/openwrt_release`` and ``/usr/lib/os-release`` (+ ``/etc/os-release``), as base-files has."""
    dist_id = info.get("dist_name") or (
        "OpenWrt" if info.get("dist", "openwrt") == "openwrt" else info["dist"]
    )
    version = info["version_number"]
    revision = info["revision"]
    description = f"{dist_id} {version} {revision}"
    etc = root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    release = (
        f"DISTRIB_ID='{dist_id}'\nDISTRIB_RELEASE='{version}'\nDISTRIB_REVISION='{revision}'\n"
        f"DISTRIB_TARGET='{info['target']}'\nDISTRIB_ARCH='{info['arch_packages']}'\n"
        f"DISTRIB_DESCRIPTION='{description}'\nDISTRIB_TAINTS=''\n"
    )
    _replace_file(etc / "openwrt_release", release)
    os_release = (
        f'NAME="{dist_id}"\nVERSION="{version}"\nID="{info.get("dist", "openwrt")}"\n'
        f'ID_LIKE="lede openwrt"\nPRETTY_NAME="{dist_id} {version}"\nVERSION_ID="{version.lower()}"\n'
        f'HOME_URL="https://openwrt.org/"\nBUILD_ID="{revision}"\nOPENWRT_BOARD="{info["target"]}"\n'
        f'OPENWRT_ARCH="{info["arch_packages"]}"\nOPENWRT_TAINTS=""\nOPENWRT_RELEASE="{description}"\n'
    )
    usr_lib = root / "usr/lib"
    usr_lib.mkdir(parents=True, exist_ok=True)
    _replace_file(usr_lib / "os-release", os_release)
    link = etc / "os-release"
    if link.is_symlink() or link.exists():
        _remove(link)
    os.symlink("../usr/lib/os-release", link)


def _replace_file(path: Path, text: str) -> None:
    if path.is_symlink() or path.exists():
        _remove(path)
    path.write_text(text)


def apply_files(root: Path, files_dir: Path) -> None:
    """Copy the FILES directory over the rootfs (symlinks kept as links, modes kept)."""
    for source in sorted(files_dir.rglob("*")):
        relative = source.relative_to(files_dir)
        target = root / relative
        if source.is_dir() and not source.is_symlink():
            if target.is_symlink() or target.is_file():
                target.unlink()
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            _remove(target)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


def apply_services(root: Path, disabled: set[str]) -> None:
    """Enable every rc.common init script (S/K links in /etc/rc.d) except the DISABLED_SERVICES."""
    init_dir = root / "etc/init.d"
    rc_dir = root / "etc/rc.d"
    for script in sorted(init_dir.iterdir()) if init_dir.is_dir() else []:
        try:
            text = script.read_text(errors="replace")
        except OSError:
            continue
        if not text.startswith("#!/bin/sh /etc/rc.common"):
            continue
        name = script.name
        if name in disabled:
            continue
        rc_dir.mkdir(parents=True, exist_ok=True)
        for prefix, key in (("S", "START"), ("K", "STOP")):
            match = re.search(rf"^{key}=(\d+)", text, re.MULTILINE)
            if match:
                link = rc_dir / f"{prefix}{int(match.group(1)):02d}{name}"
                if not (link.is_symlink() or link.exists()):
                    os.symlink(f"../init.d/{name}", link)
    for name in disabled:
        for link in rc_dir.glob(f"[SK][0-9][0-9]{name}") if rc_dir.is_dir() else []:
            link.unlink()


def set_times(root: Path, epoch: int) -> None:
    """Give every entry the build's source_date_epoch, so images do not depend on when they were built."""
    for path in [*root.rglob("*"), root]:
        os.utime(path, (epoch, epoch), follow_symlinks=False)
