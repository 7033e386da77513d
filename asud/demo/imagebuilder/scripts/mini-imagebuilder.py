#!/usr/bin/env python3
"""The miniature OpenWrt ImageBuilder behind the IB ``Makefile``.

It honours the real ImageBuilder interface (``make info``, ``manifest``, ``image``, ``package_list``,
``val.VAR``, ``help``, ``clean``) with the real output formats and failure texts, reading what the real
IB gets from its build system from ``.targetinfo.json``. It is an independent implementation: standard
library plus mksquashfs/mke2fs, never the ``asud`` package. It writes only below the IB directory,
``BIN_DIR`` and ``$TMPDIR``, and never modifies a file it did not create (IB trees may be hard-linked
copies of a shared cache).

Make variables arrive through the environment (the Makefile exports them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mini_ib_feeds as feeds
import mini_ib_images as images
import mini_ib_rootfs as rootfs
from mini_ib_resolver import Problem, Resolution, Universe, resolve

DEFAULT_ROOTFS_PARTSIZE = 104
USAGE = """\
Available Commands:
	help:	This help text
	info:	Show a list of available target profiles
	clean:	Remove images and temporary build files
	image:	Build an image (see below for more information).
	package_list:	List available packages with version and size

Building images:
	By default 'make image' will create an image with the default
	target profile and package set. You can use the following parameters
	to change that:

	make image PROFILE="<profilename>" # override the default target profile
	make image PACKAGES="<pkg1> [<pkg2> [<pkg3> ...]]" # include extra packages
	make image FILES="<path>" # include extra files from <path>
	make image BIN_DIR="<path>" # alternative output directory for the images
	make image EXTRA_IMAGE_NAME="<string>" # Add this to the output image filename (sanitized)
	make image DISABLED_SERVICES="<svc1> [<svc2> [<svc3> ..]]" # services in /etc/init.d/ to disable
	make image ROOTFS_PARTSIZE="<size>" # override the default rootfs partition size in MegaBytes
	make image ROOTFS_FILESYSTEM="<fs>" # build only this rootfs filesystem (when supported)

Print manifest:
	List "all" packages which get installed into the image.
	You can use the following parameters:

	make manifest PROFILE="<profilename>" # override the default target profile
	make manifest PACKAGES="<pkg1> [<pkg2> [<pkg3> ...]]" # include extra packages
	make manifest STRIP_ABI=1 # remove ABI version from printed package names
"""


class BuildFailed(Exception):
    """A failure already reported on stdout/stderr; the program exits with ``exit_code``."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


@dataclass
class Context:
    """The IB directory, its ``.targetinfo.json`` and the make variables of this run."""

    top: Path
    info: dict
    env: dict[str, str]

    @property
    def apk(self) -> bool:
        return self.info.get("package_manager") == "apk"

    @property
    def board(self) -> str:
        return self.info["target"].split("/")[0]

    @property
    def subtarget(self) -> str:
        return self.info["target"].partition("/")[2]

    def var(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def words(self, name: str) -> list[str]:
        return self.var(name).split()

    def profile_id(self) -> str | None:
        """PROFILE without a ``DEVICE_`` prefix, or None when unset."""
        profile = self.var("PROFILE")
        if not profile:
            return None
        return profile[len("DEVICE_") :] if profile.startswith("DEVICE_") else profile

    def bin_dir(self) -> Path:
        value = self.var("BIN_DIR")
        return Path(value) if value else self.top / "bin" / "targets" / self.board / self.subtarget

    def kernel_build_dir(self) -> Path:
        return (
            self.top
            / "build_dir"
            / f"target-{self.info['arch_packages']}_musl"
            / f"linux-{self.board}_{self.subtarget}"
        )

    def variables(self) -> dict[str, str]:
        """What ``make val.VAR`` can print."""
        kernel = self.info.get("linux_kernel") or {}
        return {
            "ARCH_PACKAGES": self.info["arch_packages"],
            "ARCH": self.info.get("architecture", ""),
            "BIN_DIR": str(self.bin_dir()),
            "BOARD": self.board,
            "SUBTARGET": self.subtarget,
            "TARGETID": self.info["target"],
            "KERNEL_BUILD_DIR": str(self.kernel_build_dir()),
            "REVISION": self.info["revision"],
            "VERSION_CODE": self.info["revision"],
            "VERSION_NUMBER": self.info["version_number"],
            "VERSION_DIST": self.info.get("dist_name") or "OpenWrt",
            "SOURCE_DATE_EPOCH": str(self.info["source_date_epoch"]),
            "DEFAULT_PACKAGES": " ".join(self.info.get("default_packages", [])),
            "PROFILE_NAMES": " ".join(f"DEVICE_{p}" for p in self.info.get("profiles", {})),
            "TARGET_FILESYSTEMS": " ".join(self.info.get("filesystems", [])),
            "LINUX_VERSION": kernel.get("version", ""),
            "LINUX_RELEASE": kernel.get("release", ""),
            "LINUX_VERMAGIC": kernel.get("vermagic", ""),
            "PACKAGE_DIR": str(self.top / "packages"),
            "TOPDIR": str(self.top),
            "IMG_PREFIX": self.img_prefix(),
            "USE_APK": "y" if self.apk else "",
            "CONFIG_TARGET_ROOTFS_PARTSIZE": str(self.rootfs_partsize()),
        }

    def img_prefix(self) -> str:
        return images.img_prefix(
            self.info.get("dist", "openwrt"),
            self.info["version_number"],
            bool(self.info.get("img_prefix_version")),
            self.var("EXTRA_IMAGE_NAME"),
            self.info["target"],
        )

    def rootfs_partsize(self) -> int:
        value = self.var("ROOTFS_PARTSIZE")
        return (
            int(value)
            if value.isdigit() and int(value) > 0
            else int(self.info.get("rootfs_partsize") or DEFAULT_ROOTFS_PARTSIZE)
        )


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- info / checks ----------------------------------------------------------------------------------


def cmd_info(ctx: Context) -> None:
    info = ctx.info
    lines = [f'Current Target: "{info["target"]}"']
    if info.get("architecture"):
        lines.append(f'Current Architecture: "{info["architecture"]}"')
    lines += [
        f'Current Revision: "{info["revision"]}"',
        "Default Packages: " + " ".join(info.get("default_packages", [])),
        "Available Profiles:",
        "",
    ]
    for profile_id, profile in info.get("profiles", {}).items():
        lines.append(f"{profile_id}:")
        if profile.get("title"):
            lines.append(f"    {profile['title']}")
        lines.append("    Packages: " + " ".join(profile.get("device_packages", [])))
        has_metadata = profile.get("has_image_metadata", bool(profile.get("supported_devices")))
        lines.append(f"    hasImageMetadata: {1 if has_metadata else 0}")
        if profile.get("supported_devices"):
            lines.append("    SupportedDevices: " + " ".join(profile["supported_devices"]))
    print("\n".join(lines))


def cmd_check_profile(ctx: Context) -> None:
    profile = ctx.profile_id()
    if profile is not None and profile not in ctx.info.get("profiles", {}):
        print(f'Profile "{ctx.var("PROFILE")}" does not exist!')
        print('Use "make info" to get a list of available profile names.')
        raise BuildFailed(1)


def cmd_check_rootfs_filesystem(ctx: Context) -> None:
    wanted = ctx.var("ROOTFS_FILESYSTEM")
    available = ctx.info.get("filesystems", [])
    if wanted and ctx.info.get("rootfs_filesystem_option") and wanted not in available:
        print(f'Filesystem "{wanted}" is not available!')
        print("Available filesystems: " + " ".join(available))
        raise BuildFailed(1)


def cmd_val(ctx: Context, name: str) -> None:
    values = ctx.variables()
    if name in values:
        print(values[name])
    elif name in ctx.env:
        print(ctx.env[name])
    else:
        err(f"{name} undefined")


# --- packages ---------------------------------------------------------------------------------------


def filter_removals(tokens: list[str]) -> list[str]:
    """The IB's ``-pkg`` filter: drop every ``-x`` token and every ``x`` it names."""
    removed = {t[1:] for t in tokens if t.startswith("-")}
    return [t for t in tokens if not t.startswith("-") and t not in removed]


def build_packages(ctx: Context, profile_id: str | None) -> list[str]:
    """``BUILD_PACKAGES``: sorted defaults + device packages + kernel, filtered; user packages prepended
    and filtered again (two passes, as the 21.02+ IB Makefile does)."""
    device = ctx.info["profiles"][profile_id].get("device_packages", []) if profile_id else []
    base = sorted(set(ctx.info.get("default_packages", [])) | set(device) | {"kernel"})
    return filter_removals(ctx.words("PACKAGES") + filter_removals(base))


def load_universe(ctx: Context, stage: str) -> Universe:
    try:
        if ctx.apk:
            loaded = feeds.load_apk_feeds(ctx.top, ctx.top / "keys")
        else:
            loaded = feeds.load_opkg_feeds(ctx.top, ctx.top / "keys")
    except feeds.FeedError as error:
        err(str(error) if ctx.apk else f"Collected errors:\n * opkg_conf_load: {error}")
        fail_package_step(ctx, stage, "package_reload", 1 if ctx.apk else 255)
    return Universe(loaded, apk=ctx.apk)


def fail_package_step(ctx: Context, stage: str, step: str, code: int) -> None:
    err(f"make[2]: *** [Makefile:{234 if step == 'package_install' else 221}: {step}] Error {code}")
    err(f"make[1]: *** [Makefile:{171 if stage == '_call_manifest' else 153}: {stage}] Error 2")
    raise BuildFailed(2)


def _pkg_label(package: object) -> str:
    return f"{package.name}-{package.version}"  # type: ignore[attr-defined]


def report_problems(ctx: Context, problems: list[Problem], quiet_stdout: bool) -> None:
    """Print the package manager's own failure text for ``problems`` (opkg or apk form)."""
    if ctx.apk:
        err("ERROR: unable to select packages:")
        for problem in problems:
            if problem.kind == "unknown":
                err(f"  {problem.package} (no such package):\n    required by: world[{problem.top}]")
            elif problem.kind == "unsatisfied":
                parent = _pkg_label(problem.subject)
                err(f"  {problem.package} (no such package):\n    required by: {parent}[{problem.relation}]")
            else:
                subject = problem.subject
                assert subject is not None
                err(f"  {_pkg_label(subject)}:")
                for other in problem.others:
                    err(f"    conflicts: {_pkg_label(other)}[{other.name}={other.version}]")
                err(f"    satisfies: world[{subject.stripped_name}]")
        return
    if not quiet_stdout:
        for problem in problems:
            if problem.kind == "unknown":
                print(f"Unknown package '{problem.package}'.", flush=True)
    err("Collected errors:")
    for problem in problems:
        if problem.kind == "unknown":
            err(f" * opkg_install_cmd: Cannot install package {problem.package}.")
        elif problem.kind == "unsatisfied":
            subject = problem.subject
            assert subject is not None
            err(f" * satisfy_dependencies_for: Cannot satisfy the following dependencies for {subject.name}:")
            err(f" * \t{problem.relation}")
            err(f" * opkg_install_cmd: Cannot install package {problem.top}.")
        else:
            err(f" * check_conflicts_for: The following packages conflict with {problem.package}:")
            for other in problem.others:
                err(f" * check_conflicts_for: \t{other.name} ")
            err(f" * opkg_install_cmd: Cannot install package {problem.package}.")


def resolve_or_fail(ctx: Context, universe: Universe, profile_id: str | None, stage: str) -> Resolution:
    resolution = resolve(build_packages(ctx, profile_id), universe)
    if resolution.problems:
        report_problems(ctx, resolution.problems, quiet_stdout=stage == "_call_manifest")
        fail_package_step(ctx, stage, "package_install", 1 if ctx.apk else 255)
    return resolution


def manifest_lines(ctx: Context, resolution: Resolution) -> list[str]:
    strip = ctx.var("STRIP_ABI") not in ("", "0")
    rows = sorted((p.stripped_name if strip else p.name, p.version) for p in resolution.selected)
    return [f"{name} - {version}" for name, version in rows]


def cmd_manifest(ctx: Context) -> None:
    cmd_check_profile(ctx)
    universe = load_universe(ctx, "_call_manifest")
    resolution = resolve_or_fail(ctx, universe, ctx.profile_id(), "_call_manifest")
    print("\n".join(manifest_lines(ctx, resolution)))


def cmd_package_list(ctx: Context) -> None:
    universe = load_universe(ctx, "package_list")
    for package in universe.all_packages():
        print(f"{package.name} - {package.version} - {package.size}")


# --- image ------------------------------------------------------------------------------------------


def kernel_blob(ctx: Context) -> bytes:
    """The kernel put into images: ``.targetinfo.json`` ``kernel_image`` (IB-relative), else
    ``KERNEL_BUILD_DIR/kernel``, else any ``build_dir/**/kernel``."""
    candidates = [ctx.kernel_build_dir() / "kernel", *sorted((ctx.top / "build_dir").glob("**/kernel"))]
    if ctx.info.get("kernel_image"):
        candidates.insert(0, ctx.top / ctx.info["kernel_image"])
    for path in candidates:
        if path.is_file():
            return path.read_bytes()
    seed = hashlib.sha256(f"{ctx.info['target']} {ctx.info['revision']}".encode()).digest()
    return b"MINIKERNEL" + seed * 64


def stage_rootfs(ctx: Context, resolution: Resolution, root: Path) -> None:
    """package_install + prepare_rootfs: payloads, state, release files, FILES, services."""
    print("\nInstalling packages...", flush=True)
    control_files: dict[str, dict[str, bytes]] = {}
    file_lists: dict[str, list[str]] = {}
    for package in resolution.selected:
        try:
            data = feeds.download(package, ctx.top)
        except feeds.FeedError as error:
            err(f"Collected errors:\n * opkg_download: {error}" if not ctx.apk else f"ERROR: {error}")
            fail_package_step(ctx, "_call_image", "package_install", 1 if ctx.apk else 255)
        if not ctx.apk:
            control_files[package.name] = feeds.ipk_control_files(data)
        file_lists[package.name] = rootfs.install_package(package, data, root, ctx.apk)
        print(f"Installing {package.name} ({package.version}) to root...", flush=True)
    print("\nFinalizing root filesystem...", flush=True)
    epoch = int(ctx.info["source_date_epoch"])
    if ctx.apk:
        rootfs.write_apk_state(root, resolution.selected, resolution.asked, file_lists)
    else:
        rootfs.write_opkg_state(
            root, resolution.selected, set(resolution.requested), control_files, file_lists, epoch
        )
    rootfs.write_release_files(root, ctx.info)
    files = ctx.var("FILES")
    if files:
        files_dir = Path(files)
        if not files_dir.is_dir():
            err(f"FILES directory {files} does not exist")
            raise BuildFailed(2)
        rootfs.apply_files(root, files_dir)
    rootfs.apply_services(root, set(ctx.words("DISABLED_SERVICES")))
    rootfs.set_times(root, epoch)


def fail_out_of_space(ctx: Context, error: images.OutOfSpace) -> None:
    err(str(error))
    err(f"make[3]: *** [{ctx.top}/include/image.mk:367: {error.target}] Error 1")
    err("make[2]: *** [Makefile:247: build_image] Error 2")
    err("make[1]: *** [Makefile:153: _call_image] Error 2")
    raise BuildFailed(2)


def build_profile(ctx: Context, universe: Universe, profile_id: str, work: Path, bin_dir: Path) -> dict:
    """Build every image of one profile into ``bin_dir``; returns its profiles.json entry."""
    profile = ctx.info["profiles"][profile_id]
    print(f"Building images for {ctx.board} - {profile.get('title', profile_id)}", flush=True)
    resolution = resolve_or_fail(ctx, universe, profile_id, "_call_image")
    print("Packages: " + " ".join(p.name for p in resolution.selected), flush=True)
    root = work / f"root-{profile_id}"
    root.mkdir()
    stage_rootfs(ctx, resolution, root)

    wanted_fs = ctx.var("ROOTFS_FILESYSTEM") if ctx.info.get("rootfs_filesystem_option") else ""
    entries = [e for e in profile.get("images", []) if not wanted_fs or e.get("filesystem") == wanted_fs]
    epoch = int(ctx.info["source_date_epoch"])
    prefix = f"{ctx.img_prefix()}-{profile_id}"
    partsize = ctx.rootfs_partsize()
    filesystems: dict[str, Path] = {}
    print("\nBuilding images...", flush=True)
    try:
        for fs in dict.fromkeys(e.get("filesystem", "squashfs") for e in entries):
            target = work / f"root.{fs}"
            if fs == "ext4":
                images.build_ext4(root, target, partsize, epoch, f"{prefix}-{fs}")
            else:
                images.build_squashfs(root, target, epoch)
            filesystems[fs] = target
        kernel = kernel_blob(ctx)
        limit = (profile.get("file_size_limits") or {}).get("image")
        built = []
        for entry in entries:
            name = f"{prefix}-{entry['suffix']}"
            staged = work / "tmp" / name
            staged.parent.mkdir(exist_ok=True)
            images.build_image(
                entry["type"],
                profile_id,
                kernel,
                filesystems[entry.get("filesystem", "squashfs")],
                partsize,
                staged,
                epoch,
            )
            size = staged.stat().st_size
            if limit and size > int(limit):
                err(f"    WARNING: Image file {staged} is too big: {size} > {limit}")
                staged.unlink()
                continue
            shutil.move(str(staged), bin_dir / name)
            built.append((entry, name, size))
    except images.OutOfSpace as error:
        fail_out_of_space(ctx, error)
    except images.ImageError as error:
        err(str(error))
        err("make[2]: *** [Makefile:247: build_image] Error 2")
        err("make[1]: *** [Makefile:153: _call_image] Error 2")
        raise BuildFailed(2) from error

    (bin_dir / f"{prefix}.manifest").write_text(
        "".join(f"{line}\n" for line in manifest_lines(ctx, resolution))
    )
    return profile_entry(ctx, profile, prefix, bin_dir, built)


def profile_entry(ctx: Context, profile: dict, prefix: str, bin_dir: Path, built: list) -> dict:
    with_size = bool(ctx.info.get("profiles_json_size"))
    image_list = []
    for entry, name, size in built:
        digest = hashlib.sha256((bin_dir / name).read_bytes()).hexdigest()
        image = {"name": name, "type": entry["type"], "sha256": digest, "sha256_unsigned": digest}
        if entry.get("filesystem"):
            image["filesystem"] = entry["filesystem"]
        if with_size:
            image["size"] = size
        image_list.append(image)
    result = {
        "device_packages": list(profile.get("device_packages", [])),
        "image_prefix": prefix,
        "images": image_list,
        "supported_devices": list(profile.get("supported_devices", [])),
        "titles": list(profile.get("titles") or [{"title": profile.get("title", "")}]),
    }
    if with_size and profile.get("file_size_limits"):
        result["file_size_limits"] = profile["file_size_limits"]
    return result


def write_profiles_json(ctx: Context, bin_dir: Path, profiles: dict[str, dict]) -> None:
    info = ctx.info
    document = {
        "arch_packages": info["arch_packages"],
        "default_packages": sorted(info.get("default_packages", [])),
        "metadata_version": 1,
        "profiles": profiles,
        "source_date_epoch": int(info["source_date_epoch"]),
        "target": info["target"],
        "version_code": info["revision"],
        "version_number": info["version_number"],
    }
    if info.get("linux_kernel"):
        document["linux_kernel"] = info["linux_kernel"]
    (bin_dir / "profiles.json").write_text(json.dumps(document, sort_keys=True, separators=(",", ":")))


def write_sha256sums(bin_dir: Path) -> None:
    lines = []
    for path in sorted(p for p in bin_dir.iterdir() if p.is_file() and p.name != "sha256sums"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()} *{path.name}\n")
    (bin_dir / "sha256sums").write_text("".join(lines))


def cmd_image(ctx: Context) -> None:
    cmd_check_profile(ctx)
    cmd_check_rootfs_filesystem(ctx)
    profile = ctx.profile_id()
    profile_ids = [profile] if profile else list(ctx.info.get("profiles", {}))
    bin_dir = ctx.bin_dir()
    bin_dir.mkdir(parents=True, exist_ok=True)
    universe = load_universe(ctx, "_call_image")
    (ctx.top / "tmp").mkdir(exist_ok=True)
    built: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mini-ib-", dir=ctx.top / "tmp") as work_dir:
        for profile_id in profile_ids:
            work = Path(work_dir) / profile_id
            work.mkdir()
            built[profile_id] = build_profile(ctx, universe, profile_id, work, bin_dir)
    write_profiles_json(ctx, bin_dir, built)
    print("\nCalculating checksums...", flush=True)
    write_sha256sums(bin_dir)


def cmd_clean(ctx: Context) -> None:
    for name in ("tmp", "dl", "bin"):
        shutil.rmtree(ctx.top / name, ignore_errors=True)


def main(argv: list[str]) -> int:
    if not argv:
        print(USAGE)
        return 0
    top = Path(os.environ.get("TOPDIR") or Path(__file__).resolve().parent.parent)
    command = argv[0]
    if command == "help":
        print(USAGE)
        return 0
    try:
        info = json.loads((top / ".targetinfo.json").read_text())
    except (OSError, ValueError) as error:
        err(f"cannot read {top / '.targetinfo.json'}: {error}")
        return 2
    ctx = Context(top, info, dict(os.environ))
    commands = {
        "info": cmd_info,
        "manifest": cmd_manifest,
        "image": cmd_image,
        "package_list": cmd_package_list,
        "check_profile": cmd_check_profile,
        "check_rootfs_filesystem": cmd_check_rootfs_filesystem,
        "clean": cmd_clean,
    }
    try:
        if command == "val":
            cmd_val(ctx, argv[1] if len(argv) > 1 else "")
        elif command in commands:
            commands[command](ctx)
        else:
            err(f"unknown command {command}")
            return 2
    except BuildFailed as failure:
        return failure.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
