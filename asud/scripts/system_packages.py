"""The programs ``make demo`` and ``make bench`` need from the system, and the Debian packages behind them.

``python3 -m asud.scripts.system_packages [--venv] [--bench]`` runs with the system Python before any
virtualenv exists (standard library only; ``--venv`` also checks that ``python3 -m venv`` works, ``--bench``
adds what ``make bench`` needs on top of the demo). When something is
missing it installs it with ``apt-get`` when running as root, and otherwise prints the exact
``apt-get install`` line and exits 1. ``asud demo`` runs the same check (without ``--venv``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["BENCH_NEEDS", "DEMO_NEEDS", "Need", "apt_line", "ensure", "install_commands", "missing"]


class Need(NamedTuple):
    program: str
    package: str
    why: str


#: What the demo runs: the daemon's own Redis, the sandbox, unpacking ImageBuilders, the miniature
#: ImageBuilder's make targets and image tools.
DEMO_NEEDS: tuple[Need, ...] = (
    Need("bwrap", "bubblewrap", "the build sandbox"),
    Need("redis-server", "redis-server", "asud's state (the daemon runs its own)"),
    Need("mksquashfs", "squashfs-tools", "squashfs images"),
    Need("mke2fs", "e2fsprogs", "ext4 images"),
    Need("xz", "xz-utils", "unpacking .tar.xz ImageBuilders"),
    Need("zstd", "zstd", "unpacking .tar.zst ImageBuilders"),
    Need("tar", "tar", "unpacking ImageBuilders"),
    Need("make", "make", "the ImageBuilder's make targets"),
)
#: ``make bench`` builds like the demo and drives the daemon with wrk (the issue's load generator).
BENCH_NEEDS: tuple[Need, ...] = (*DEMO_NEEDS, Need("wrk", "wrk", "the load generator of make bench"))
#: ``python3 -m venv`` needs ensurepip, which Debian ships apart.
VENV_NEED = Need("python3 -m venv", "python3-venv", "the virtualenv of make")

#: Debian keeps mke2fs and friends in sbin, which a normal user's PATH often lacks.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def _installed(program: str) -> bool:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
    return shutil.which(program, path=path) is not None


def _venv_works() -> bool:
    try:
        import ensurepip  # noqa: F401
        import venv  # noqa: F401
    except ImportError:
        return False
    return True


def missing(needs: Sequence[Need] = DEMO_NEEDS, *, venv: bool = False) -> list[Need]:
    """The needs that are not met, in the order given."""
    absent = [need for need in needs if not _installed(need.program)]
    if venv and not _venv_works():
        absent.insert(0, VENV_NEED)
    return absent


def apt_line(needs: Sequence[Need]) -> str:
    """The command a person runs: ``sudo apt-get install -y bubblewrap redis-server``."""
    packages = list(dict.fromkeys(need.package for need in needs))
    return "sudo apt-get install -y " + " ".join(packages)


def install_commands(needs: Sequence[Need]) -> list[list[str]]:
    """What root runs: refresh the package lists, then install without questions or recommends."""
    packages = list(dict.fromkeys(need.package for need in needs))
    return [["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]]


def explain(needs: Sequence[Need]) -> str:
    """Why the demo (or the bench) cannot start, and the line that fixes it."""
    lines = ["asud needs programs that are not installed:"]
    lines += [f"  {need.program:<16} (Debian package {need.package}: {need.why})" for need in needs]
    if shutil.which("apt-get") is None:
        lines.append("Install those packages with your system's package manager, then try again.")
    else:
        lines.append("Install them (as root), then try again:")
        lines.append(f"  {apt_line(needs)}")
    return "\n".join(lines)


def can_install() -> bool:
    """Root on a machine with apt-get."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def ensure(needs: Sequence[Need] = DEMO_NEEDS, *, venv: bool = False, install: bool | None = None) -> int:
    """Install what is missing as root (``install``: whether to try; default: root with apt-get), or
    explain it; 0 when everything is there afterwards."""
    absent = missing(needs, venv=venv)
    if not absent:
        return 0
    if not (can_install() if install is None else install):
        print(explain(absent), file=sys.stderr)
        return 1
    packages = " ".join(dict.fromkeys(need.package for need in absent))
    print(f"installing {packages} (running as root)", file=sys.stderr, flush=True)
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in install_commands(absent):
        if subprocess.run(command, env=environment, check=False).returncode != 0:
            print(f"`{' '.join(command)}` failed", file=sys.stderr)
            return 1
    still = missing(needs, venv=venv)
    if still:
        print(explain(still), file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    unknown = [arg for arg in args if arg not in ("--venv", "--bench")]
    if unknown:
        print(
            "usage: python3 -m asud.scripts.system_packages [--venv] [--bench]"
            f" (unknown: {' '.join(unknown)})",
            file=sys.stderr,
        )
        return 2
    return ensure(BENCH_NEEDS if "--bench" in args else DEMO_NEEDS, venv="--venv" in args)


if __name__ == "__main__":
    sys.exit(main())
