"""``sysup serve`` as a real process: it migrates the database, then answers on the given port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from sysup.cli import app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_is_registered() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--no-worker", "--workers", "--config"):
        assert option in result.output


def test_serve_migrates_and_answers(tmp_path: Path) -> None:
    config = tmp_path / "sysup.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "sysup.cli",
        "serve",
        "--no-worker",
        "--port",
        str(port),
        "--config",
        str(config),
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYSUP_")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/json/v1/overview.json", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sysup serve did not answer within 30 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["branches"] == {}
        assert (tmp_path / "data" / "sysup.db").is_file()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    assert f"http://127.0.0.1:{port}/docs" in output
