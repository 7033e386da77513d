"""Where ImageBuilder commands run: inside bubblewrap (no network, read-only system) or, on purpose, bare.

``find_sandbox(mode)`` picks one from ``[build] sandbox``. Both speak the same :class:`Sandbox` protocol,
so the runner never knows which it has::

    sandbox = find_sandbox("bwrap", build_uid=65534, reactor=reactor, kill_grace=5)
    yield sandbox.check()                                       # SandboxError if bwrap cannot start here
    result = yield sandbox.run(["make", "info"], workdir=ws, writable=[ws], env={"SOURCE_DATE_EPOCH": "0"},
                               timeout=600, output_limit=16 * 1024**2, step="make info", on_line=log)

Inside bwrap the command sees a fresh root: ``/usr`` (and the ``/bin``, ``/lib*`` links), a few files of
``/etc`` that make, Python, tar and mke2fs read, a new ``/proc``, a minimal ``/dev``, a private ``/tmp``,
and the paths it was given at the same absolute paths as on the host (so ``file:`` URLs written by the
package cache stay valid). Every namespace is unshared (``--unshare-all``: no network, no host PIDs, its
own PID namespace), all capabilities are dropped even when the daemon runs as root, and
``--die-with-parent`` plus the PID namespace make a TERM to bwrap end the whole tree.

A workspace hard-links the ImageBuilder cache, and a process may ``chmod`` files it owns without any
capability, so a build running as the cache's owner could make a linked file writable and change the cache
for every later build. When the daemon runs as root, builds therefore run as ``build_uid`` (a user of
their own): before each run the workspace's directories and its own (single-link) files are handed to that
uid (in a thread: it walks the tree), while the hard-linked cache files stay root's and read-only. That
needs every parent of the workspace to be searchable by others (``/var/lib/asud`` is; a ``0700`` parent is
not): where it is not, the build runs as the daemon's user, and a warning says so.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from asud.build.process import ChildProcess, LineCallback, ProcessResult, ProcessSpec
from asud.errors import SandboxError

__all__ = [
    "NO_SANDBOX_WARNING",
    "BwrapSandbox",
    "Launch",
    "NoSandbox",
    "ProcessResult",
    "Sandbox",
    "find_sandbox",
    "hand_over",
]

log = Logger()

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
    'WARNING: asud sandbox is disabled (sandbox = "none"): this command ran with the server\'s '
    "permissions and network access.\n"
)


@attrs.frozen
class Launch:
    """A command ready to spawn, what its run must say first, and what to remove after it."""

    spec: ProcessSpec
    #: Text put before the child's own stderr (and logged as its first line).
    preamble: str = ""
    cleanup: tuple[Path, ...] = ()


class Sandbox(Protocol):
    """Runs one command with only ``writable`` paths writable, under a timeout and an output cap."""

    name: str
    #: The reactor its children and threads run on.
    reactor: Any

    def launch(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
    ) -> Deferred[Launch]: ...

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
        step: str = "",
        on_line: LineCallback | None = None,
    ) -> Deferred[ProcessResult]: ...

    def check(self) -> Deferred[None]: ...


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


class _Runs:
    """``run()`` for both sandboxes: :meth:`launch`, then one :class:`ChildProcess` (cancellable: the
    Deferred fires once the child is gone), then the launch's cleanup."""

    def __init__(self, *, reactor: Any = None, kill_grace: float = 5.0) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.reactor = reactor
        self.kill_grace = kill_grace

    def launch(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
    ) -> Deferred[Launch]:
        raise NotImplementedError

    def in_thread(self, function: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), function, *args)

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
        step: str = "",
        on_line: LineCallback | None = None,
    ) -> Deferred[ProcessResult]:
        return Deferred.fromCoroutine(self._run(argv, workdir, writable, readonly, env, timeout,
                                                output_limit, step, on_line))

    async def _run(self, argv: list[str], workdir: Path, writable: Sequence[Path], readonly: Sequence[Path],
                   env: dict[str, str], timeout: float, output_limit: int, step: str,
                   on_line: LineCallback | None) -> ProcessResult:
        launch = await self.launch(argv, workdir=workdir, writable=writable, readonly=readonly, env=env)
        try:
            if launch.preamble and on_line is not None:
                for line in launch.preamble.splitlines():
                    on_line(step, line)
            child = ChildProcess(launch.spec, reactor=self.reactor, timeout=timeout,
                                 output_limit=output_limit, kill_grace=self.kill_grace, step=step,
                                 on_line=on_line)
            result = await child.start()
        finally:
            for path in launch.cleanup:
                shutil.rmtree(path, ignore_errors=True)
        if launch.preamble:
            result = attrs.evolve(result, stderr=launch.preamble + result.stderr)
        return result


class BwrapSandbox(_Runs):
    """bubblewrap: unshared namespaces, read-only system, only the given paths writable."""

    name = "bwrap"

    def __init__(
        self,
        bwrap: str,
        *,
        tmp_size: int = DEFAULT_TMP_SIZE,
        build_uid: int | None = None,
        reactor: Any = None,
        kill_grace: float = 5.0,
    ) -> None:
        super().__init__(reactor=reactor, kill_grace=kill_grace)
        self.bwrap = bwrap
        self.tmp_size = tmp_size
        #: Only a daemon that may change uid (root, or a user given the capabilities to) runs builds as
        #: another uid.
        self.build_uid = build_uid if build_uid is not None and can_switch_uid() else None
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
            "--hostname", "asud-build",
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

    def launch(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
    ) -> Deferred[Launch]:
        cmd = self.command(argv, workdir=workdir, writable=writable, readonly=readonly, env=env)
        uid = self.build_uid

        def spec(reachable: bool) -> Launch:
            user = uid
            if user is not None and not reachable:
                log.warn("sandbox: {paths} is not reachable by uid {uid}; building as the daemon's user",
                         paths=[str(path) for path in writable], uid=user)
                user = None
            return Launch(ProcessSpec(cmd, {"PATH": SANDBOX_PATH}, None, user, user))

        if uid is None:
            return succeed(spec(True))
        return self.in_thread(_prepare_for, uid, list(writable), list(readonly)).addCallback(spec)

    def check(self) -> Deferred[None]:
        """Run ``true`` inside; fails with ``SandboxError`` if this host cannot create the namespaces."""
        return Deferred.fromCoroutine(self._check())

    async def _check(self) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="asud-bwrap-check-"))
        try:
            result = await self.run(["true"], workdir=tmp, writable=[tmp], env={}, timeout=30,
                                    output_limit=65536)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if not result.ok:
            raise SandboxError(
                f"bwrap cannot start a sandbox on this host (exit {result.returncode}): "
                f"{result.stderr.strip() or 'no error text'}",
                result.stdout,
                result.stderr,
            )
        if self.build_uid is not None:
            log.info("sandbox: bwrap; builds run as uid {uid}", uid=self.build_uid)
        else:
            log.warn("sandbox: bwrap; builds run as the daemon's own uid {uid} (run the daemon as root, or "
                     "give it CAP_SETUID, CAP_SETGID and CAP_CHOWN, to build as [build] sandbox_uid)",
                     uid=os.geteuid())


class NoSandbox(_Runs):
    """No isolation at all; only for ``sandbox = "none"`` set on purpose. Every run says so in its log.

    The command starts in a session of its own (``setsid``) so a timeout's signals reach everything it
    started, not just its first process.
    """

    name = "none"

    def launch(
        self,
        argv: list[str],
        *,
        workdir: Path,
        writable: Sequence[Path],
        readonly: Sequence[Path] = (),
        env: dict[str, str],
    ) -> Deferred[Launch]:
        log.warn('running {argv} without a sandbox (sandbox = "none")', argv=argv[:2])
        tmp = tempfile.mkdtemp(prefix="asud-nosandbox-")
        path = SANDBOX_PATH
        python = _python_fallback()
        if python is not None:
            path = f"{path}:{python / 'bin'}"
        setsid = shutil.which("setsid")
        command = [setsid, *argv] if setsid else list(argv)
        spec = ProcessSpec(command, _base_env(tmp, tmp, env, path), str(Path(workdir)),
                           kill_group=setsid is not None)
        return succeed(Launch(spec, NO_SANDBOX_WARNING, (Path(tmp),)))

    def check(self) -> Deferred[None]:
        return succeed(None)


#: What a daemon needs to run a build as another uid: switch to it (SETUID, SETGID) and hand the workspace
#: to it (CHOWN). Bit numbers from linux/capability.h.
_SWITCH_CAPABILITIES = {"CAP_CHOWN": 0, "CAP_SETGID": 6, "CAP_SETUID": 7}


def can_switch_uid(status: Path = Path("/proc/self/status")) -> bool:
    """Root, or a user holding CAP_SETUID, CAP_SETGID and CAP_CHOWN (e.g. systemd's ``User=asud`` with
    ``AmbientCapabilities=``)."""
    if os.geteuid() == 0:
        return True
    try:
        text = status.read_text()
    except OSError:
        return False
    found = re.search(r"^CapEff:\s*([0-9a-f]+)$", text, re.MULTILINE)
    effective = int(found.group(1), 16) if found else 0
    return all(effective & (1 << bit) for bit in _SWITCH_CAPABILITIES.values())


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
    when ``uid`` could not reach one of the paths, and the build must run as the daemon's user."""
    for path in writable:
        if not _reachable_by(path, uid):
            return False
        hand_over(Path(path), uid)
    return all(_reachable_by(path, uid) for path in readonly)


def find_sandbox(
    mode: Literal["bwrap", "none"],
    *,
    build_uid: int | None = None,
    reactor: Any = None,
    kill_grace: float = 5.0,
) -> BwrapSandbox | NoSandbox:
    """The sandbox for the ``sandbox`` setting (call its ``check()`` once before the first build).
    ``build_uid``: the uid builds run as when the daemon is root (see the module docstring).

    Raises ``SandboxError`` when bwrap is wanted but missing: the daemon then refuses to build rather
    than silently building without isolation.
    """
    if mode == "none":
        log.warn('sandbox = "none": builds run WITHOUT isolation (no bwrap)')
        return NoSandbox(reactor=reactor, kill_grace=kill_grace)
    if mode != "bwrap":
        raise SandboxError(f"unknown sandbox mode {mode!r} (expected 'bwrap' or 'none')")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError(
            "bwrap (bubblewrap) is not installed: install the Debian package 'bubblewrap', or set "
            'sandbox = "none" to build without a sandbox on purpose'
        )
    return BwrapSandbox(bwrap, build_uid=build_uid, reactor=reactor, kill_grace=kill_grace)
