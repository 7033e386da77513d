"""Where ImageBuilder commands run: inside bubblewrap (no network, read-only system) or, on purpose, bare.

``find_sandbox(mode)`` picks one from the ``sandbox`` setting. Both speak the same ``Sandbox`` protocol, so
the runner never knows which it has::

    sandbox = find_sandbox("bwrap")
    result = sandbox.run(["make", "info"], workdir=ws, writable=[ws], env={"SOURCE_DATE_EPOCH": "0"},
                         timeout=600, output_limit=16 * 1024**2)

Inside bwrap the command sees a fresh root: ``/usr`` (and the ``/bin``, ``/lib*`` links), a few files of
``/etc`` that make, Python, tar and mke2fs read, a new ``/proc``, a minimal ``/dev``, a private ``/tmp``, and
the paths it was given at the same absolute paths as on the host (so ``file:`` URLs written by the package
cache stay valid). Every namespace is unshared, so it has no network, sees no host process, and all
capabilities are dropped even when the server runs as root.

A workspace hard-links the ImageBuilder cache, and a process may ``chmod`` files it owns without any
capability, so a build running as the cache's owner could make a linked file writable and change the cache
for every later build. When the worker runs as root, builds therefore run as ``build_uid`` (a user of
their own): before each run the workspace's directories and its own (single-link) files are handed to that
uid, while the hard-linked cache files stay root's and read-only. That needs every parent of the
workspace to be searchable by others (``/var/lib/sysup`` is; a ``0700`` parent is not): where it is not,
the build runs as the worker's user as before, and a warning says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from asud.errors import SandboxError
from sysup.imagebuilders.process import RunResult, run_limited

__all__ = ["BwrapSandbox", "NoSandbox", "RunResult", "Sandbox", "find_sandbox"]

log = logging.getLogger(__name__)

#: PATH inside a build; Python and the Debian tools the ImageBuilder calls live here.
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"

#: Top-level system directories mounted read-only (or re-created as the same symlink, on merged-/usr hosts).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

#: The parts of /etc that make, Python, tar, mksquashfs and mke2fs read; nothing with secrets.
ETC_PATHS = (
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
    "/etc/mke2fs.conf",
)

#: Size of the private /tmp of a bwrap build (it lives in memory).
DEFAULT_TMP_SIZE = 1024**3

#: The line a build log gets when it ran without a sandbox.
NO_SANDBOX_WARNING = (
    'WARNING: sysup sandbox is disabled (sandbox = "none"): this command ran with the server\'s '
    "permissions and network access.\n"
)


class Sandbox(Protocol):
    """Runs one command with only ``writable`` paths writable, under a timeout and an output cap."""

    name: str

    def run(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
        timeout: float,
        output_limit: int,
    ) -> RunResult: ...


def _base_env(home: str, tmpdir: str, extra: dict[str, str], path: str) -> dict[str, str]:
    env = {"PATH": path, "HOME": home, "TMPDIR": tmpdir, "LANG": "C", "LC_ALL": "C"}
    env.update(extra)
    return env


def _python_fallback() -> Path | None:
    """The running interpreter's prefix when the host has no ``python3`` under the system directories.

    The miniature ImageBuilder runs ``python3``; on hosts where the only Python lives elsewhere (pyenv,
    /opt), that prefix is mounted read-only and appended to PATH.
    """
    if shutil.which("python3", path=SANDBOX_PATH):
        return None
    return Path(sys.base_prefix).resolve()


class BwrapSandbox:
    """bubblewrap: unshared namespaces, read-only system, only the given paths writable."""

    name = "bwrap"

    def __init__(
        self, bwrap: str, *, tmp_size: int = DEFAULT_TMP_SIZE, build_uid: int | None = None
    ) -> None:
        self.bwrap = bwrap
        self.tmp_size = tmp_size
        #: Only a root worker can run builds as another uid.
        self.build_uid = build_uid if build_uid is not None and os.geteuid() == 0 else None
        self._python = _python_fallback()

    def command(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
    ) -> list[str]:
        """The full bwrap command line for ``argv`` (exposed so build logs can show it)."""
        cmd = [
            self.bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop", "ALL",
            "--hostname", "sysup-build",
        ]  # fmt: skip
        for name in SYSTEM_DIRS:
            if os.path.islink(name):
                cmd += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                cmd += ["--ro-bind", name, name]
        for name in ETC_PATHS:
            cmd += ["--ro-bind-try", name, name]
        path = SANDBOX_PATH
        if self._python is not None:
            cmd += ["--ro-bind", str(self._python), str(self._python)]
            path = f"{path}:{self._python / 'bin'}"
        cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.tmp_size), "--tmpfs", "/tmp"]
        # Writable paths first, read-only ones after, so a read-only path can sit inside a writable one.
        for target in writable:
            resolved = str(Path(target).resolve())
            cmd += ["--bind", resolved, resolved]
        for target in readonly:
            resolved = str(Path(target).resolve())
            cmd += ["--ro-bind", resolved, resolved]
        # The sandbox's own root is a tmpfs bwrap made for the mount points: freeze it as well.
        cmd += ["--remount-ro", "/", "--chdir", str(Path(workdir).resolve()), "--clearenv"]
        for key, value in _base_env("/tmp", "/tmp", env, path).items():
            cmd += ["--setenv", key, value]
        return [*cmd, "--", *argv]

    def run(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
        timeout: float,
        output_limit: int,
    ) -> RunResult:
        cmd = self.command(argv, workdir=workdir, writable=writable, readonly=readonly, env=env)
        user = self.build_uid
        if user is not None and not _prepare_for(user, writable, readonly):
            log.warning("sandbox: %s is not reachable by uid %s; building as the worker's user",
                        [str(path) for path in writable], user)
            user = None
        return run_limited(
            cmd, cwd=None, env={"PATH": SANDBOX_PATH}, timeout=timeout, output_limit=output_limit, user=user
        )

    def check(self) -> None:
        """Run ``true`` inside; raise ``SandboxError`` if this host cannot create the namespaces."""
        with tempfile.TemporaryDirectory(prefix="sysup-bwrap-check-") as tmp:
            result = self.run(
                ["true"], workdir=Path(tmp), writable=[Path(tmp)], env={}, timeout=30, output_limit=65536
            )
        if not result.ok:
            raise SandboxError(
                f"bwrap cannot start a sandbox on this host (exit {result.returncode}): "
                f"{result.stderr.strip() or 'no error text'}",
                result.stdout,
                result.stderr,
            )


class NoSandbox:
    """No isolation at all; only for ``sandbox = "none"`` set on purpose. Every run says so in its log."""

    name = "none"

    def run(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
        timeout: float,
        output_limit: int,
    ) -> RunResult:
        log.warning('running %s without a sandbox (sandbox = "none")', argv[:2])
        with tempfile.TemporaryDirectory(prefix="sysup-nosandbox-") as tmp:
            path = SANDBOX_PATH
            python = _python_fallback()
            if python is not None:
                path = f"{path}:{python / 'bin'}"
            result = run_limited(
                argv,
                cwd=Path(workdir),
                env=_base_env(tmp, tmp, env, path),
                timeout=timeout,
                output_limit=output_limit,
            )
        return RunResult(
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=NO_SANDBOX_WARNING + result.stderr,
            timed_out=result.timed_out,
            output_truncated=result.output_truncated,
            duration=result.duration,
        )


def hand_over(root: Path, uid: int) -> None:
    """Give ``root``, its directories and its single-link files to ``uid``; hard links (the cache's files,
    shared with other workspaces) keep their owner, so the build cannot ``chmod`` them."""
    for current, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(current, name)
            info = os.lstat(path)
            if info.st_uid == uid:
                continue
            if stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode) or info.st_nlink == 1:
                os.chown(path, uid, uid, follow_symlinks=False)


def _reachable_by(path: Path | str, uid: int) -> bool:
    """``uid`` may pass every parent of ``path`` (``u+x`` on its own directories, else ``o+x``)."""
    for parent in Path(path).resolve().parents:
        info = os.stat(parent)
        if not info.st_mode & (stat.S_IXUSR if info.st_uid == uid else stat.S_IXOTH):
            return False
    return True


def _prepare_for(uid: int, writable: Sequence[Path], readonly: Sequence[Path]) -> bool:
    """Hand the writable paths to ``uid`` (in order: a later one may sit inside an earlier one); ``False``
    when ``uid`` could not reach one of the paths, and the build must run as the worker's user."""
    for path in writable:
        if not _reachable_by(path, uid):
            return False
        hand_over(Path(path), uid)
    return all(_reachable_by(path, uid) for path in readonly)


def find_sandbox(
    mode: Literal["bwrap", "none"], *, check: bool = True, build_uid: int | None = None
) -> Sandbox:
    """The sandbox for the ``sandbox`` setting; with ``check`` a bwrap sandbox is tried once first.
    ``build_uid``: the uid builds run as when the worker is root (see the module docstring).

    Raises ``SandboxError`` when bwrap is wanted but missing or unusable: the server then refuses to
    build rather than silently building without isolation.
    """
    if mode == "none":
        log.warning('sandbox = "none": builds run WITHOUT isolation (no bwrap)')
        return NoSandbox()
    if mode != "bwrap":
        raise SandboxError(f"unknown sandbox mode {mode!r} (expected 'bwrap' or 'none')")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError(
            "bwrap (bubblewrap) is not installed: install the Debian package 'bubblewrap', or set "
            'sandbox = "none" to build without a sandbox on purpose'
        )
    sandbox = BwrapSandbox(bwrap, build_uid=build_uid)
    if check:
        sandbox.check()
    return sandbox
