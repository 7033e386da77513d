"""Drive one workspace's ImageBuilder: ``make info``, ``make manifest``, ``make image``, inside the sandbox.

Each ``make`` is one child process (:mod:`asud.build.process`) run through the sandbox; its lines go to the
runner's ``on_line`` with the step's name (``make info``, ``make manifest``, ``make image``). Every method
returns a Deferred; cancelling it stops the running ``make`` and fires once it is gone.

Arguments become separate argv items (``PACKAGES=a b c``), never a shell line, and every value is checked
against a strict pattern first: make expands ``$(…)`` in command-line variables, so a ``$`` in a package
name would otherwise run code in the build.

Failures become ``asud.errors`` with a clear ``detail``; the exact ImageBuilder output stays in
``stdout``/``stderr`` of the error:

* opkg ``Cannot install package x`` / apk ``x (no such package)`` → ``ImpossiblePackageSelection`` naming x
* opkg/apk conflicts and apk "virtual" packages → ``ImpossiblePackageSelection`` with the reason
* ``is too big`` or ``out of space?`` → ``ImageTooBig("Error: Selected packages exceed device storage")``
  (also when make exited 0: a flash image over its limit is deleted without failing make)
* no ``BIN_DIR/profiles.json`` → ``BuildError("No JSON file found")``; profile missing in it →
  ``BuildError("Profile not found in JSON file")``
* timeout or output limit → ``SandboxError``

**ROOTFS_FILESYSTEM.** Only newer ImageBuilders (OpenWrt main since May 2026) honour it; older ones build
every filesystem. ``supports_rootfs_filesystem()`` asks the ImageBuilder itself: it runs
``make _check_rootfs_filesystem ROOTFS_FILESYSTEM=<impossible>``, which an IB that supports the option
answers with ``Filesystem "…" is not available!``; an older IB has no such target (or, like the demo IB
of an old release, accepts anything silently). ``image()`` passes the variable only when the caller says
the IB supports it (pass the probe's answer, or what the catalog knows).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from asud.build.process import LineCallback, ProcessResult
from asud.build.sandbox import Sandbox
from asud.errors import BadRequest, BuildError, ImageTooBig, SandboxError, SignatureError
from asud.upstream.errors import UpstreamFormatError
from asud.upstream.make_info import parse_make_info
from asud.upstream.manifest import parse_manifest
from asud.upstream.profiles_json import parse_profiles_json
from asud.upstream.records import MakeInfo, ProfilesDocument

__all__ = ["TOO_BIG", "ImageBuilderRunner", "ImageResult", "ImpossiblePackageSelection"]

TOO_BIG = "Error: Selected packages exceed device storage"

_PACKAGE = re.compile(r"^-?[A-Za-z0-9_.+@~-]+(?:[=<>~]{1,2}[A-Za-z0-9_.+~-]+)?$")
_PROFILE = re.compile(r"^[A-Za-z0-9_.,-]+$")
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9_.-]*$")
_FILESYSTEM = re.compile(r"^[a-z0-9-]+$")
_PATH_FORBIDDEN = re.compile(r"[\s$'\"\\`;]")

_OPKG_CANNOT = re.compile(r"Cannot install package (\S+?)\.?$", re.M)
_APK_NO_SUCH = re.compile(r"^\s+(\S+) \(no such package\):", re.M)
_APK_VIRTUAL = re.compile(r"^\s+(\S+) \(virtual\):", re.M)
_OPKG_CONFLICT = re.compile(r"The following packages conflict with (\S+?):?$", re.M)
_OPKG_CLASH = re.compile(
    r"Package (\S+) wants to install file (\S+)\s+But that file is already provided by "
    r"package\s+\*\s+(\S+)",
    re.M,
)
_APK_CONFLICT = re.compile(r"^\s+(\S+):\s*\n\s+conflicts: (\S+)", re.M)
_APK_OVERWRITE = re.compile(r"ERROR: (\S+): trying to overwrite (\S+) owned by (\S+?)\.?$", re.M)


class ImpossiblePackageSelection(BuildError):
    """The ImageBuilder could not install the selection; ``packages`` names the culprits."""

    def __init__(self, detail: str, packages: Sequence[str], stdout: str = "", stderr: str = "") -> None:
        super().__init__(detail, stdout, stderr)
        self.packages = list(packages)


@attrs.frozen
class ImageResult:
    profiles: ProfilesDocument
    bin_dir: Path
    #: The make command as run inside the sandbox (what clients see as ``build_cmd``).
    build_cmd: list[str]
    stdout: str
    stderr: str


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.match(value):
        raise BadRequest(f"invalid {what}: {value!r}")
    return value


def _check_path(path: Path, what: str) -> Path:
    path = Path(path).resolve()
    if _PATH_FORBIDDEN.search(str(path)):
        raise BadRequest(f"invalid {what} path: {str(path)!r}")
    return path


def _last_error_line(text: str) -> str:
    """The most telling line of a failed make: the last that is not make's own ``***`` chatter."""
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped and not stripped.startswith("make") and "***" not in stripped:
            return stripped
    return ""


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _package_failure(text: str) -> tuple[str, list[str]] | None:
    """A clear detail and the package names for a failed package installation, or ``None``."""
    missing = _unique(_OPKG_CANNOT.findall(text) + _APK_NO_SUCH.findall(text))
    if missing:
        return f"Error: Impossible package selection: cannot install {', '.join(missing)}", missing
    virtual = _unique(_APK_VIRTUAL.findall(text))
    if virtual:
        return (
            f"Error: Impossible package selection: {', '.join(virtual)} is a virtual package; "
            "select one of the packages that provide it explicitly",
            virtual,
        )
    conflicts = _unique(_OPKG_CONFLICT.findall(text))
    if conflicts:
        return (
            f"Error: Impossible package selection: packages conflict with {', '.join(conflicts)}",
            conflicts,
        )
    apk_conflicts = [(a, b.split("[", 1)[0]) for a, b in _APK_CONFLICT.findall(text)]
    if apk_conflicts:
        names = _unique([name for pair in apk_conflicts for name in pair])
        pairs = "; ".join(f"{a} conflicts with {b}" for a, b in apk_conflicts)
        return f"Error: Impossible package selection: {pairs}", names
    clashes = _OPKG_CLASH.findall(text) + [(a, f, b) for a, f, b in _APK_OVERWRITE.findall(text)]
    if clashes:
        package, path, owner = clashes[0]
        return (
            f"Error: Impossible package selection: {package} and {owner} both install {path}",
            _unique([package, owner]),
        )
    return None


class ImageBuilderRunner:
    """Runs ``make`` targets of the ImageBuilder in ``workspace_path`` through ``sandbox``.

    ``timeout`` applies to each make call; ``output_limit`` caps what one call may print and, for
    ``image()``, the bytes it may leave in ``BIN_DIR``. ``env`` adds variables (e.g. ``SOURCE_DATE_EPOCH``)
    to the sandbox's minimal environment; ``readonly`` paths are visible read-only (e.g. the package cache
    when the workspace's local feeds link into it). ``on_line(step, text)`` receives every output line.
    """

    def __init__(
        self,
        workspace_path: Path,
        sandbox: Sandbox,
        timeout: float,
        output_limit: int,
        *,
        env: dict[str, str] | None = None,
        readonly: Sequence[Path] = (),
        on_line: LineCallback | None = None,
    ) -> None:
        self.workspace = _check_path(workspace_path, "workspace")
        self.sandbox = sandbox
        self.timeout = float(timeout)
        self.output_limit = output_limit
        self.env = dict(env or {})
        self.readonly = list(readonly)
        self.on_line = on_line

    # -- running --------------------------------------------------------------------------------

    def run(
        self,
        argv: list[str],
        *,
        writable: Sequence[Path] = (),
        readonly: Sequence[Path] = (),
        step: str | None = None,
    ) -> Deferred[ProcessResult]:
        """``argv`` in the workspace, sandboxed, with only the workspace (and ``writable``) writable."""
        return self.sandbox.run(
            argv,
            workdir=self.workspace,
            writable=[self.workspace, *writable],
            readonly=[*self.readonly, *readonly],
            env=self.env,
            timeout=self.timeout,
            output_limit=self.output_limit,
            step=step or " ".join(argv[:2]),
            on_line=self.on_line,
        )

    def _raise_for(self, result: ProcessResult, what: str, *, image: bool = False) -> None:
        """Turn a failed run into the matching ``asud.errors`` exception.

        With ``image`` a size overrun fails the build even when make exited 0 (see the module docstring).
        """
        if result.timed_out:
            raise SandboxError(
                f"Error: {what} timed out after {self.timeout:g} s", result.stdout, result.stderr
            )
        if result.output_truncated:
            raise SandboxError(
                f"Error: {what} printed more than {self.output_limit} bytes and was stopped",
                result.stdout,
                result.stderr,
            )
        text = f"{result.stdout}\n{result.stderr}"
        if (image or result.returncode != 0) and ("is too big" in text or "out of space?" in text):
            raise ImageTooBig(TOO_BIG, result.stdout, result.stderr)
        if result.returncode == 0:
            return
        package_failure = _package_failure(text)
        if package_failure is not None:
            detail, names = package_failure
            raise ImpossiblePackageSelection(detail, names, result.stdout, result.stderr)
        if "does not exist!" in text and "Profile" in text:
            raise BuildError(
                f"Error: {_last_line_with(text, 'does not exist!')}", result.stdout, result.stderr
            )
        if "is not available!" in text:
            raise BuildError(
                f"Error: {_last_line_with(text, 'is not available!')}", result.stdout, result.stderr
            )
        if "signature" in text.lower() and ("verify" in text.lower() or "invalid" in text.lower()):
            raise SignatureError(
                f"Error: {what}: a package index signature did not verify: {_last_error_line(text)}"
            )
        last = _last_error_line(result.stderr) or _last_error_line(result.stdout)
        raise BuildError(
            f"Error: {what} failed (exit {result.returncode})" + (f": {last}" if last else ""),
            result.stdout,
            result.stderr,
        )

    # -- make targets ---------------------------------------------------------------------------

    def info(self) -> Deferred[MakeInfo]:
        """``make info``, parsed."""
        return Deferred.fromCoroutine(self._info())

    async def _info(self) -> MakeInfo:
        result = await self.run(["make", "info"])
        self._raise_for(result, "make info")
        try:
            return parse_make_info(result.stdout)
        except UpstreamFormatError as error:
            raise BuildError(
                f"Error: cannot read make info output: {error.detail}", result.stdout, result.stderr
            ) from error

    def value(self, name: str) -> Deferred[str]:
        """``make val.NAME`` — any variable of the ImageBuilder's make."""
        return Deferred.fromCoroutine(self._value(name))

    async def _value(self, name: str) -> str:
        _check(re.compile(r"^[A-Za-z0-9_]+$"), name, "make variable")
        result = await self.run(["make", "--no-print-directory", f"val.{name}"], step=f"make val.{name}")
        self._raise_for(result, f"make val.{name}")
        return result.stdout.strip()

    def supports_rootfs_filesystem(self) -> Deferred[bool]:
        """Whether ``make image ROOTFS_FILESYSTEM=`` selects a filesystem (see the module docstring)."""
        return Deferred.fromCoroutine(self._supports_rootfs_filesystem())

    async def _supports_rootfs_filesystem(self) -> bool:
        result = await self.run(["make", "_check_rootfs_filesystem", "ROOTFS_FILESYSTEM=asud-probe-none"])
        if result.timed_out or result.output_truncated:
            self._raise_for(result, "make _check_rootfs_filesystem")
        return 'Filesystem "asud-probe-none" is not available!' in f"{result.stdout}\n{result.stderr}"

    def manifest(self, profile: str, packages: Sequence[str]) -> Deferred[dict[str, str]]:
        """``make manifest PROFILE=… PACKAGES="…" STRIP_ABI=1`` → installed name → version (ABI-stripped)."""
        return Deferred.fromCoroutine(self._manifest(profile, list(packages)))

    async def _manifest(self, profile: str, packages: list[str]) -> dict[str, str]:
        argv = ["make", "manifest", *self._profile_and_packages(profile, packages), "STRIP_ABI=1"]
        result = await self.run(argv)
        self._raise_for(result, "make manifest")
        manifest = parse_manifest(result.stdout)
        if not manifest:
            raise BuildError("Error: make manifest printed no packages", result.stdout, result.stderr)
        return manifest

    def image_command(
        self,
        profile: str,
        packages: Sequence[str],
        *,
        bin_dir: Path,
        files_dir: Path | None = None,
        extra_image_name: str = "",
        rootfs_partsize: int | None = None,
        rootfs_filesystem: str | None = None,
        supports_rootfs_filesystem: bool = False,
    ) -> list[str]:
        """The ``make image`` argv ``image()`` runs (validated)."""
        argv = ["make", "image", *self._profile_and_packages(profile, packages)]
        argv.append(f"EXTRA_IMAGE_NAME={_check(_EXTRA_NAME, extra_image_name, 'extra image name')}")
        argv.append(f"BIN_DIR={_check_path(bin_dir, 'BIN_DIR')}")
        if files_dir is not None:
            argv.append(f"FILES={_check_path(files_dir, 'FILES')}")
        if rootfs_partsize is not None:
            if (
                not isinstance(rootfs_partsize, int)
                or isinstance(rootfs_partsize, bool)
                or rootfs_partsize <= 0
            ):
                raise BadRequest(f"invalid rootfs partition size: {rootfs_partsize!r}")
            argv.append(f"ROOTFS_PARTSIZE={rootfs_partsize}")
        if rootfs_filesystem and supports_rootfs_filesystem:
            argv.append(f"ROOTFS_FILESYSTEM={_check(_FILESYSTEM, rootfs_filesystem, 'filesystem')}")
        return argv

    def image(
        self,
        profile: str,
        packages: Sequence[str],
        *,
        bin_dir: Path,
        files_dir: Path | None,
        extra_image_name: str,
        rootfs_partsize: int | None,
        rootfs_filesystem: str | None,
        supports_rootfs_filesystem: bool,
    ) -> Deferred[ImageResult]:
        """``make image …`` with ``BIN_DIR`` writable and ``FILES`` read-only, then ``BIN_DIR/profiles.json``.

        ``rootfs_filesystem`` is passed only when ``supports_rootfs_filesystem``; older IBs build all
        filesystems and the caller picks the images it wants from ``profiles``.
        """
        return Deferred.fromCoroutine(self._image(
            profile, list(packages), bin_dir, files_dir, extra_image_name, rootfs_partsize,
            rootfs_filesystem, supports_rootfs_filesystem,
        ))

    async def _image(self, profile: str, packages: list[str], bin_dir: Path, files_dir: Path | None,
                     extra_image_name: str, rootfs_partsize: int | None, rootfs_filesystem: str | None,
                     supports_rootfs_filesystem: bool) -> ImageResult:
        argv = self.image_command(
            profile,
            packages,
            bin_dir=bin_dir,
            files_dir=files_dir,
            extra_image_name=extra_image_name,
            rootfs_partsize=rootfs_partsize,
            rootfs_filesystem=rootfs_filesystem,
            supports_rootfs_filesystem=supports_rootfs_filesystem,
        )
        bin_dir = Path(bin_dir).resolve()
        bin_dir.mkdir(parents=True, exist_ok=True)
        readonly = [Path(files_dir).resolve()] if files_dir is not None else []
        result = await self.run(argv, writable=[bin_dir], readonly=readonly)
        self._raise_for(result, "make image", image=True)
        reactor: Any = self.sandbox.reactor
        used, raw = await deferToThreadPool(reactor, reactor.getThreadPool(), _read_bin_dir, bin_dir)
        if used > self.output_limit:
            raise SandboxError(
                f"Error: make image left {used} bytes in BIN_DIR, over the limit of {self.output_limit}",
                result.stdout,
                result.stderr,
            )
        if raw is None:
            raise BuildError("No JSON file found", result.stdout, result.stderr)
        try:
            document = parse_profiles_json(raw)
        except UpstreamFormatError as error:
            raise BuildError(
                f"Error: unreadable profiles.json: {error.detail}", result.stdout, result.stderr
            ) from error
        profile_id = profile.removeprefix("DEVICE_")
        if profile_id not in document.profiles and profile_id.replace(",", "_") not in document.profiles:
            raise BuildError("Profile not found in JSON file", result.stdout, result.stderr)
        return ImageResult(
            profiles=document, bin_dir=bin_dir, build_cmd=argv, stdout=result.stdout, stderr=result.stderr
        )

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _profile_and_packages(profile: str, packages: Sequence[str]) -> list[str]:
        _check(_PROFILE, profile, "profile")
        for package in packages:
            _check(_PACKAGE, package, "package name")
        return [f"PROFILE={profile}", f"PACKAGES={' '.join(packages)}"]


def _read_bin_dir(bin_dir: Path) -> tuple[int, bytes | None]:
    """Bytes the build left in ``bin_dir`` and its ``profiles.json`` (``None`` when missing)."""
    used = sum(
        path.stat().st_size for path in bin_dir.rglob("*") if path.is_file() and not path.is_symlink()
    )
    profiles_path = bin_dir / "profiles.json"
    return used, profiles_path.read_bytes() if profiles_path.is_file() else None


def _last_line_with(text: str, needle: str) -> str:
    for line in reversed(text.splitlines()):
        if needle in line:
            return line.strip()
    return needle
