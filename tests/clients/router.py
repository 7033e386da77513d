"""A fake OpenWrt router: a root directory run under bubblewrap with BusyBox as its userland.

The root is a copy of a template under ``tests/clients/fake_router/`` (``/usr/lib/opkg/status`` or
``/etc/apk/world`` and ``/lib/apk/db/installed``, ``/etc/config``, the recorded outputs in ``/recorded``),
plus Debian's ``busybox`` with its applets in ``/bin``, the stand-ins of ``standin.py`` as ``ubus``,
``uci``, ``jsonfilter``, ``uclient-fetch``, ``sysupgrade`` and (opkg templates only) ``opkg``, and the
router client, copied unmodified to ``/usr/bin/asud-upgrade``.
The host's ``/usr`` is bound read-only at ``/opt/host/usr`` (for the stand-ins' Python) and its C
libraries at the usual places, so the programs run; the network is the host's, so 127.0.0.1 reaches
the test server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
TEMPLATES = HERE / "fake_router"
CLIENT = HERE.parent.parent / "clients" / "openwrt" / "files" / "asud-upgrade"

#: BusyBox applets the client (and a stock OpenWrt image) has.
APPLETS = [
    *("sh", "ash", "awk", "basename", "cat", "chmod", "cp", "cut", "date", "dirname", "echo", "env", "false"),
    *("grep", "head", "id", "ln", "ls", "mkdir", "mktemp", "mv", "printf", "rm", "sed", "sha256sum", "sleep"),
    *("sort", "stat", "tail", "tee", "test", "touch", "tr", "true", "uniq", "wc", "wget", "xargs", "[", "[["),
]
STANDINS = {
    "bin/ubus": "ubus",
    "sbin/uci": "uci",
    "usr/bin/jsonfilter": "jsonfilter",
    "bin/uclient-fetch": "uclient-fetch",
    "sbin/sysupgrade": "sysupgrade",
    "bin/opkg": "opkg",
}
HOST_PYTHON = "/opt/host/usr/bin/python3.11"


class FakeRouter:
    """One router root under ``path``, built from the template ``template`` (a directory name)."""

    def __init__(self, path: Path, template: str, server_url: str, busybox: str, bwrap: str) -> None:
        self.path = path
        self.bwrap = bwrap
        shutil.copytree(TEMPLATES / template, path, symlinks=True)
        for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "usr/libexec", "tmp", "root", "proc", "dev"):
            (path / directory).mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, path / "bin" / "busybox")
        for applet in APPLETS:
            (path / "bin" / applet).symlink_to("busybox")
        standin = path / "usr" / "libexec" / "standin.py"
        standin.write_text(f"#!{HOST_PYTHON} -IS\n" + (TEMPLATES / "standin.py").read_text())
        standin.chmod(0o755)
        for place in STANDINS:
            if place == "bin/opkg" and not (path / "usr" / "lib" / "opkg").is_dir():
                continue  # an apk-era image has no opkg
            (path / place).symlink_to("/usr/libexec/standin.py")
        shutil.copy2(CLIENT, path / "usr" / "bin" / "asud-upgrade")
        self.set_server(server_url)

    def use_wget(self) -> None:
        """Take ``uclient-fetch`` away and make ``/bin/wget`` the BusyBox-wget stand-in."""
        (self.path / "bin" / "uclient-fetch").unlink()
        wget = self.path / "bin" / "wget"
        wget.unlink()
        wget.symlink_to("/usr/libexec/standin.py")

    def set_server(self, url: str) -> None:
        """Point UCI ``attendedsysupgrade.server.url`` at ``url``, as ``uci set …; uci commit`` would."""
        config = self.path / "etc" / "config" / "attendedsysupgrade"
        text = config.read_text()
        start = text.index("option url '") + len("option url '")
        end = text.index("'", start)
        config.write_text(text[:start] + url + text[end:])

    def run(self, *args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``busybox sh /usr/bin/asud-upgrade ARGS`` inside the router."""
        command = [
            self.bwrap,
            "--bind", str(self.path), "/",
            "--ro-bind", "/usr", "/opt/host/usr",
            "--ro-bind", "/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
            "--ro-bind", "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
            "--ro-bind", "/usr/lib64", "/lib64",
            "--proc", "/proc",
            "--dev", "/dev",
            "--unshare-pid",
            "--die-with-parent",
            "--clearenv",
            "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin",
            "--setenv", "HOME", "/root",
            "--chdir", "/root",
            "/bin/busybox", "sh", "/usr/bin/asud-upgrade", *args,
        ]  # fmt: skip
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        """Every recorded stand-in call (of ``tool``), oldest first."""
        log = self.path / "recorded" / "calls.jsonl"
        if not log.exists():
            return []
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        return [entry for entry in entries if tool is None or entry["tool"] == tool]

    def file(self, path: str) -> Path:
        """A path inside the router, as seen from the host."""
        return self.path / path.lstrip("/")
