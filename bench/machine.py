"""Describe the machine and its load, so every figure can be read against the conditions it was taken in."""

from __future__ import annotations

import os
import platform
import re
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


def _redis_version() -> str:
    try:
        run = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    found = re.search(r"v=(\S+)", run.stdout)
    return found.group(1) if found else "unknown"


def describe() -> list[str]:
    """Markdown lines: date, machine, CPU model and count, memory, Python and the versions that matter."""
    packages = ("asud", "twisted", "klein", "treq", "txredisapi", "attrs", "werkzeug")
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.node()}, {platform.platform()}",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs; memory {_memory()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        + ", ".join(f"{name} {_version(name)}" for name in packages)
        + f"; redis-server {_redis_version()}",
        f"- load generator: {_wrk_version()} (and the bench's own clients where wrk cannot); the daemon "
        "under test is one `twist asud` process (access log off) with its own redis-server",
        f"- load average at start (1/5/15 min): {loadavg()}",
    ]
