"""Describe the machine and its load, so every figure can be read against the conditions it was taken in."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata


def loadavg() -> str:
    """``1.23 0.98 0.75`` (1, 5 and 15 minutes), for the record under each figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    try:
        run = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (run.stdout + run.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def describe() -> list[str]:
    """Markdown lines: date, machine, CPU count, memory, Python and the versions that matter for speed."""
    packages = (
        "sysup",
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "orjson",
        "sqlalchemy",
        "huey",
        "pydantic",
    )
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.node()}, {platform.platform()}",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs; memory {_memory()}",
        f"- Python {platform.python_version()}; "
        + ", ".join(f"{name} {_version(name)}" for name in packages),
        f"- load generator: {_wrk_version()}; the server under test is one `sysup serve` process",
        f"- load average at start (1/5/15 min): {loadavg()}",
    ]
