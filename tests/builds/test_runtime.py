"""The embedded consumer picks a build up soon after a quiet spell (its idle polling is capped)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sysup.builds.queue import create_huey, register_tasks
from sysup.builds.runtime import IDLE_POLL_MAX_SECONDS, start_consumer


def test_a_build_after_a_quiet_spell_starts_within_the_idle_poll_cap(tmp_path: Path) -> None:
    started = threading.Event()
    huey = create_huey(None, tmp_path)
    queue = register_tasks(huey, run_build=lambda build_id: started.set(), reap=lambda: [])
    running = start_consumer(queue, 1)
    try:
        # Huey's own default lets an idle worker back off to one poll every 10 s (about 4 s after 30 s of
        # quiet); the cap keeps every poll this close, so even a short test sees the bound hold.
        assert running.consumer.max_delay == IDLE_POLL_MAX_SECONDS <= 0.25
        time.sleep(2)
        enqueued = time.monotonic()
        queue.enqueue(1)
        assert started.wait(10)
        waited = time.monotonic() - enqueued
    finally:
        running.stop()
    assert waited < IDLE_POLL_MAX_SECONDS + 0.3
