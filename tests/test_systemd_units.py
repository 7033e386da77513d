"""``etc/asud.service`` and ``etc/asud.socket``: systemd accepts them, and socket activation serves the API.

systemd is not PID 1 on the machines the tests run on, so the units are checked with ``systemd-analyze
verify`` and the socket hand-over with ``systemd-socket-activate`` (both from Debian's ``systemd``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from asud.config import to_toml
from tests.support.daemon import DaemonProcess, daemon_settings, http_call
from tests.support.requirements import require, require_executable
from tests.support.upstream import DemoTree, demo_tree

__all__ = ["demo_tree"]

ETC = Path(__file__).resolve().parent.parent / "etc"
INSTALLED_TWIST = "/opt/asud/venv/bin/twist"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_systemd_analyze_verifies_the_service_and_the_socket(tmp_path: Path) -> None:
    require_executable("systemd-analyze", "systemd")
    twist = Path(sys.executable).with_name("twist")
    assert twist.exists(), f"twist is not installed beside {sys.executable}"
    unit = (ETC / "asud.service").read_text()
    assert INSTALLED_TWIST in unit
    (tmp_path / "asud.service").write_text(unit.replace(INSTALLED_TWIST, str(twist)))
    shutil.copy(ETC / "asud.socket", tmp_path / "asud.socket")
    done = subprocess.run(["systemd-analyze", "verify", "asud.service", "asud.socket"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), \
        done.stdout + done.stderr


def test_units_say_what_the_daemon_expects() -> None:
    service = (ETC / "asud.service").read_text()
    socket_unit = (ETC / "asud.socket").read_text()
    for line in ("Type=notify", "NotifyAccess=main", "KillMode=mixed", "StateDirectory=asud",
                 "Restart=on-failure", "--listen systemd:domain=INET:name=http", "--log-format=text"):
        assert line in service, line
    assert any(line.startswith("WatchdogSec=") for line in service.splitlines())
    assert "FileDescriptorName=http" in socket_unit


def test_socket_activation_serves_the_overview(demo_tree: DemoTree, tmp_path: Path) -> None:
    require_executable("systemd-socket-activate", "systemd")
    require_executable("redis-server")
    directory = tmp_path / "asud"
    directory.mkdir()
    settings = daemon_settings(demo_tree, directory / "data", build={"workers": 0, "sandbox": "none"})
    config = directory / "asud.toml"
    config.write_text(to_toml(settings))
    port = _free_port()
    # systemd-socket-activate passes on only the variables given with -E (and LISTEN_*), as systemd does.
    command = ["systemd-socket-activate", "--fdname=http", "-l", f"127.0.0.1:{port}",
               "-E", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
               sys.executable, "-m", "twisted", "--log-format=text", "asud", "--config", str(config),
               "--listen", "systemd:domain=INET:name=http"]
    log_path = directory / "asud.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=directory)
    try:
        deadline = time.monotonic() + 10
        while b"Listening on" not in log_path.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        # The first connection starts the daemon; it waits in the socket's backlog until asud serves.
        answer = http_call(f"http://127.0.0.1:{port}/json/v1/overview.json", timeout=90)
        assert answer.status == 200, (answer, log_path.read_text()[-3000:])
        assert "24.10" in json.loads(answer.body)["branches"]
        text = log_path.read_text()
        assert "asud listening on systemd:domain=INET:name=http" in text, text[-3000:]
        assert f"port={port}" in text
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == -signal.SIGTERM, log_path.read_text()[-3000:]
    assert "Traceback" not in log_path.read_text()


def _one_liner() -> list[str]:
    """The ``systemd-run --unit=asud …`` command of docs/deployment.md, as the shell would split it."""
    text = (ETC.parent / "docs" / "deployment.md").read_text()
    start = text.index("systemd-run --unit=asud")
    command = text[start:text.index("```", start)].replace("\\\n", " ")
    return shlex.split(command)


def test_the_documented_systemd_run_one_liner_makes_a_unit_systemd_accepts(tmp_path: Path) -> None:
    """systemd is not PID 1 here, so systemd-run cannot start it: its properties go into a unit file."""
    require_executable("systemd-analyze", "systemd")
    argv = _one_liner()
    assert argv[:2] == ["systemd-run", "--unit=asud"]
    properties = [item.removeprefix("--property=") for item in argv[2:] if item.startswith("--property=")]
    first = next(index for index, item in enumerate(argv) if index > 0 and not item.startswith("--"))
    command = argv[first:]
    assert all(item.startswith("--property=") for item in argv[2:first]), argv[2:first]
    assert command[0] == INSTALLED_TWIST and command[1:3] == ["--log-format=text", "asud"], command
    assert {"Type=notify", "NotifyAccess=main", "KillMode=mixed"} <= set(properties)
    twist = Path(sys.executable).with_name("twist")
    unit = ["[Service]", *properties, "ExecStart=" + shlex.join([str(twist), *command[1:]])]
    (tmp_path / "asud.service").write_text("\n".join(unit) + "\n")
    done = subprocess.run(["systemd-analyze", "verify", "asud.service"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), \
        done.stdout + done.stderr


def _unit_setting(name: str) -> str:
    for line in (ETC / "asud.service").read_text().splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name}= not in etc/asud.service")


#: A uid with no other use on a test machine, standing in for the unit's ``User=asud``.
DAEMON_UID = 4242


@pytest.mark.slow
def test_a_build_works_as_the_units_own_user_with_its_ambient_capabilities(demo_tree: DemoTree) -> None:
    """What systemd does to the process, emulated with setpriv: the daemon runs as a user of its own with
    the unit's AmbientCapabilities (and nothing beyond its CapabilityBoundingSet) under no_new_privs; the
    build still runs as [build] sandbox_uid inside bwrap, and its image verifies."""
    require(os.geteuid() == 0, "needs root to start a process as another user with capabilities")
    require_executable("setpriv", "util-linux")
    require_executable("redis-server")
    require_executable("bwrap", "bubblewrap")
    assert _unit_setting("User") == "asud"
    bounding_set = _unit_setting("CapabilityBoundingSet").split()
    assert _unit_setting("AmbientCapabilities").split() == bounding_set
    assert _unit_setting("NoNewPrivileges") == "yes"
    capabilities = ",".join("+" + name.lower().removeprefix("cap_") for name in bounding_set)
    prefix = ["setpriv", f"--reuid={DAEMON_UID}", f"--regid={DAEMON_UID}", "--clear-groups",
              f"--bounding-set=-all,{capabilities}", f"--inh-caps=-all,{capabilities}",
              f"--ambient-caps=-all,{capabilities}", "--no-new-privs"]
    # The daemon's own directory (StateDirectory=, owned by User=, mode 0755 so the build uid reaches its
    # workspace under it).
    directory = Path(tempfile.mkdtemp(prefix="asud-user-"))
    try:
        directory.chmod(0o755)
        os.chown(directory, DAEMON_UID, DAEMON_UID)
        settings = daemon_settings(demo_tree, directory / "data", build={"workers": 1, "sandbox_uid": 65534})
        run = directory / "run"
        run.mkdir()
        os.chown(run, DAEMON_UID, DAEMON_UID)
        daemon = DaemonProcess(run, settings, prefix=prefix)
        try:
            daemon.start()
            status = Path(f"/proc/{daemon.pid}/status").read_text()
            assert re.search(rf"^Uid:\s+{DAEMON_UID}\s+{DAEMON_UID}\s", status, re.MULTILINE), status
            bounding = int(re.search(r"CapBnd:\s*([0-9a-f]+)", status).group(1), 16)  # type: ignore[union-attr]
            assert bin(bounding).count("1") == len(bounding_set), status
            assert re.search(r"NoNewPrivs:\s*1", status)
            posted = http_call(f"{daemon.url}/api/v1/build", {
                "version": "24.10.4", "target": "ath79/generic", "profile": "tplink_archer-c7-v5",
                "packages": ["luci"]})
            assert posted.status in (200, 202), posted
            request_hash = posted.json()["request_hash"]
            deadline = time.monotonic() + 180
            answer = posted
            while answer.status != 200 and time.monotonic() < deadline:
                time.sleep(0.3)
                answer = http_call(f"{daemon.url}/api/v1/build/{request_hash}")
                assert answer.status in (200, 202), (answer, daemon.log_text()[-3000:])
            assert answer.status == 200, daemon.log_text()[-3000:]
            result = answer.json()
            image = result["images"][0]
            data = http_call(f"{daemon.url}/store/{result['bin_dir']}/{image['name']}")
            assert hashlib.sha256(data.body).hexdigest() == image["sha256"]
            log = daemon.log_text()
            assert "not reachable by uid" not in log, log[-3000:]
            assert "builds run as uid 65534" in log, log[-3000:]
            assert "building as the daemon's user" not in log, log[-3000:]
            assert "Traceback" not in log, log[-3000:]
            # The files the daemon keeps are its user's, never root's: the ImageBuilder cache included.
            owners = {path.stat().st_uid for path in (directory / "data").rglob("*") if not path.is_symlink()}
            assert 0 not in owners, owners
        finally:
            assert daemon.stop() == -signal.SIGTERM
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_deployment_doc_shows_the_units_and_the_embedding_example_as_they_are() -> None:
    text = (ETC.parent / "docs" / "deployment.md").read_text()
    for path in (ETC / "asud.service", ETC / "asud.socket", ETC.parent / "examples" / "embed.py"):
        assert path.read_text() in text, f"docs/deployment.md shows an old {path.name}"
