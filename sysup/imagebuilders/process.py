"""Run one child process with a wall-clock timeout and a cap on the bytes it may print.

Both sandboxes use this: the child gets its own session (process group), so a timeout or an output flood
kills everything it started, not just the first process.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: Seconds a killed process group gets between SIGTERM and SIGKILL.
KILL_GRACE_SECONDS = 2.0

_READ_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a sandboxed command did. ``ok`` is true only for exit 0 within both limits."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    output_truncated: bool
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_truncated


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it is still there after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if wait is None:
            break
        # Even when the leader is gone, members of its group may still live: the SIGKILL still goes out.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)


def run_limited(
    argv: list[str],
    *,
    cwd: Path | None,
    env: dict[str, str],
    timeout: float,
    output_limit: int,
    user: int | None = None,
) -> RunResult:
    """Run ``argv`` to completion, its timeout or its output limit, whichever comes first.

    ``user`` (a uid, only when running as root) runs the command as that uid and group with no
    supplementary groups.

    ``output_limit`` counts stdout and stderr together; bytes past it are dropped and the run is killed.
    Output is decoded as UTF-8 with replacement characters, never raising on bad bytes.
    """
    started = time.monotonic()
    deadline = started + timeout
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **({"user": user, "group": user, "extra_groups": []} if user is not None else {}),
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = bytearray(), bytearray()
    buffers: dict[int, bytearray] = {process.stdout.fileno(): out, process.stderr.fileno(): err}
    total = 0
    timed_out = truncated = False
    selector = selectors.DefaultSelector()
    for stream in (process.stdout, process.stderr):
        os.set_blocking(stream.fileno(), False)
        selector.register(stream.fileno(), selectors.EVENT_READ)
    try:
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                fd = int(key.fd)
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(fd)
                    continue
                room = output_limit - total
                if len(chunk) > room:
                    buffers[fd] += chunk[: max(room, 0)]
                    total = output_limit
                    truncated = True
                    break
                buffers[fd] += chunk
                total += len(chunk)
            if truncated:
                break
        if timed_out or truncated:
            _kill_group(process)
        else:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                # Output closed but the process lingers (e.g. it closed its pipes and kept running).
                timed_out = True
                _kill_group(process)
        returncode = process.wait()
    finally:
        selector.close()
        process.stdout.close()
        process.stderr.close()
        if process.poll() is None:
            _kill_group(process)
            process.wait()
    return RunResult(
        returncode=returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
        timed_out=timed_out,
        output_truncated=truncated,
        duration=time.monotonic() - started,
    )
