"""The catalog at real scale (``asud demo-upstream build --scale real``): the daemon's cold start to
ready, its memory, an unchanged refresh, and the first validation on a feed nobody has read yet.

The tree is generated (not timed in the figure) and served by its own ``asud demo-upstream serve``. A
daemon with no build slots starts on a fresh data directory (its own redis-server, an empty on-disk ETag
cache); every moment comes from its JSON log (``log_time`` of each event): spawned → "asud started" is
the cold start. One valid build request for a device of the tree is then timed from POST to answer: the
package feed it needs is read, verified and parsed on that first use. The refresh loop runs every
``REFRESH_SECONDS``; the first refresh, which finds nothing new, lasts from its scheduled moment (the
first load's end + the interval) to its "catalog unchanged" event — an upper bound, since the reactor may
start it a little late. Memory is the daemon process's peak resident set (``VmHWM``), its redis-server
not included.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from asud.demo.generator import TreeInfo, generate_tree
from bench.client import Http, request_body
from bench.context import ADD_ONS, PROFILE, TARGET, VERSION, Context
from bench.daemon import Daemon
from bench.machine import loadavg
from bench.results import Figure
from bench.upstream import serve_upstream
from bench.world import daemon_settings

#: Targets of issue 15.
MAX_COLD_SECONDS = 10.0
MAX_RSS_MB = 250.0
MAX_REFRESH_SECONDS = 1.0
MAX_FIRST_VALIDATION_MS = 300.0
#: The catalog refresh interval of the measured daemon.
REFRESH_SECONDS = 5.0


def _request(tree: TreeInfo) -> dict[str, Any]:
    """A valid build request for the bench's device (or the first profile of its target) at this scale:
    the profile and two add-ons that are in the target's package feeds."""
    version_dir = tree.version_dir(VERSION)
    profiles = json.loads((version_dir / "targets" / TARGET / "profiles.json").read_text(encoding="utf-8"))
    profile = PROFILE if PROFILE in profiles["profiles"] else sorted(profiles["profiles"])[0]
    arch = tree.targets[VERSION][TARGET]
    names: set[str] = set()
    for index in (version_dir / "packages" / arch).glob("*/Packages"):
        names.update(re.findall(r"^Package: (\S+)$", index.read_text(encoding="utf-8"), re.M))
    add_ons = [name for name in ADD_ONS if name in names][:2]
    return request_body(VERSION, TARGET, profile, add_ons, "bench/catalog")


def _event_time(daemon: Daemon, prefix: str, after: float = 0.0) -> float | None:
    event = daemon.find_event(prefix, after)
    return float(event["log_time"]) if event else None


def _wait_event(daemon: Daemon, prefix: str, after: float, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = daemon.find_event(prefix, after)
        if event is not None:
            return event
        time.sleep(0.05)
    raise TimeoutError(f"no '{prefix}' in the daemon's log within {timeout:.0f} s")


def run(context: Context) -> Figure:
    scale = context.mode.catalog_scale
    figure = Figure(
        f"catalog at {scale} scale",
        f"`asud demo-upstream build --scale {scale}` served on 127.0.0.1; a daemon with no build slots on a "
        "fresh data directory; times from its JSON log: spawn → `asud started` (cold start to ready); peak "
        "RSS of the daemon process (VmHWM); one valid build request on a device whose package feed nobody "
        f"has read, POST → answer; the first refresh ({REFRESH_SECONDS:.0f} s interval), scheduled moment → "
        "`catalog unchanged`.",
        f"cold start < {MAX_COLD_SECONDS:.0f} s, RSS < {MAX_RSS_MB:.0f} MB, unchanged refresh < "
        f"{MAX_REFRESH_SECONDS:.0f} s, first validation < {MAX_FIRST_VALIDATION_MS:.0f} ms",
    )
    work = context.world.work / f"catalog-{scale}"
    logs = context.world.logs
    with serve_upstream(work / "upstream", logs / f"upstream-{scale}.log") as upstream:
        started = time.perf_counter()
        tree = generate_tree(
            work / "upstream", seed=1, scale=scale, base_url=upstream.url, with_imagebuilders=False
        )
        size = sum(path.stat().st_size for path in Path(tree.root).rglob("*") if path.is_file())
        subtargets = sum(len(targets) for targets in tree.targets.values())
        figure.details.append(
            f"tree generated in {time.perf_counter() - started:.1f} s (not part of the figure): "
            f"{len(tree.versions)} versions, {subtargets} (version, subtarget) directories, "
            f"{size / 1e6:.0f} MB"
        )
        body = _request(tree)
        settings = daemon_settings(
            work / "data",
            upstream.url,
            tree.public_key_text,
            workers=0,
            sandbox="none",
            catalog={"refresh_interval": REFRESH_SECONDS},
        )
        figure.details.append(f"load average before: {loadavg()}")
        with Daemon(work, settings, name=f"catalog-{scale}").start() as daemon:
            cold = daemon.ready_at - daemon.spawned_at
            loaded_at = _event_time(daemon, "catalog generation") or daemon.ready_at
            events = daemon.events()
            first_at = float(events[0]["log_time"]) if events else daemon.spawned_at
            redis_at = _event_time(daemon, "started {executable}") or first_at
            figure.details.append(
                f"cold start {cold:.2f} s: spawn → first log line (Python and imports) "
                f"{first_at - daemon.spawned_at:.2f} s; → redis-server started {redis_at - first_at:.2f} s; "
                f"→ catalog loaded (Redis connection, re-index, catalog) {loaded_at - redis_at:.2f} s; "
                f"→ asud started {daemon.ready_at - loaded_at:.2f} s"
            )
            rss_ready, _ = daemon.rss_mb()
            with Http(daemon.url, timeout=60) as client:
                client.connect()
                sent = time.perf_counter()
                answer = client.post("/api/v1/build", body)
                first_ms = (time.perf_counter() - sent) * 1000
                second_sent = time.perf_counter()
                again = client.post("/api/v1/build", body)
                second_ms = (time.perf_counter() - second_sent) * 1000
            figure.details.append(
                f"first validation: {body['version']} {body['target']} {body['profile']} + "
                f"{' '.join(body['packages'])}: {answer.status} in {first_ms:.0f} ms (the same again: "
                f"{again.status} in {second_ms:.0f} ms)"
            )
            unchanged = _wait_event(daemon, "catalog unchanged", loaded_at, REFRESH_SECONDS + 60)
            refresh = float(unchanged["log_time"]) - (loaded_at + REFRESH_SECONDS)
            changed_again = _event_time(daemon, "catalog generation", loaded_at)
            rss_now, rss_peak = daemon.rss_mb()
            figure.details.append(
                f"refresh: {refresh:.2f} s, {unchanged.get('requests')} requests, "
                f"{unchanged.get('not_modified')} not modified"
                + ("; a refresh found changes (not expected)" if changed_again else "")
            )
            figure.details.append(
                f"RSS: {rss_ready:.0f} MB when ready, {rss_now:.0f} MB at the end, peak {rss_peak:.0f} MB"
            )
        figure.details.append(f"load average after: {loadavg()}")
    validated = answer.status in (200, 202)
    figure.value = (
        f"cold start {cold:.1f} s, RSS {rss_peak:.0f} MB, refresh {refresh:.2f} s, "
        f"first validation {first_ms:.0f} ms"
    )
    figure.met = (
        cold < MAX_COLD_SECONDS
        and rss_peak < MAX_RSS_MB
        and refresh < MAX_REFRESH_SECONDS
        and first_ms < MAX_FIRST_VALIDATION_MS
        and validated
        and changed_again is None
    )
    if not validated:
        figure.details.append(f"the request was not accepted: {answer.body[:300]!r}")
    return figure
