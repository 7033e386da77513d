"""Live-log fan-out: N Server-Sent-Events followers of one build; for every line the build prints, the
delay until each follower has read it, and the daemon's RSS growth while they follow.

"Printed" is the ``t`` field of the line's entry in the build's Redis stream: the daemon's own clock
(``reactor.seconds()``, to the millisecond) at the moment it read the line from the build process's pipe
(``asud.build.process`` hands each line straight to the log sink, which stamps it). "Received" is the
bench's ``time.time()`` when a follower's socket read brought the end of that line's event. Both clocks
are this machine's. The stream id's milliseconds (given by the daemon's redis-server at ``XADD``) split
each delay into "daemon read → in Redis" and "in Redis → follower read".

The followers all follow one build that is queued behind others (one build slot), so each of them is
connected and answered before the measured build prints its first line; a delivery of a line printed
before its follower's answer began would come from the backlog and is left out of the delay (counted).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import Http, request_body, submit_all, wait_all
from bench.context import ADD_ONS, PROFILE, TARGET, VERSION, Context
from bench.daemon import Daemon
from bench.machine import loadavg
from bench.profile import profiled
from bench.queue_throughput import busy_cores
from bench.results import Figure, median, percentile
from bench.sse import Followers, follow_all

#: Followers per mode (the target is stated for 500).
FOLLOWERS = {"full": 500, "tiny": 20}
#: Targets of issue 15.
MAX_P99_MS = 100.0
MAX_RSS_GROWTH_MB = 100.0
#: The measured build installs every add-on of the suite (with the device's defaults, ~100 packages):
#: one "Installing … to root..." line each, besides ``make info``/``manifest``/``image`` output.
MEASURED_PACKAGES = list(ADD_ONS)
#: Builds queued ahead of the measured one (distinct, a second or so each once the ImageBuilder is warm),
#: so that every follower is connected before its first line.
HOLDING = {"full": 3, "tiny": 1}
#: Seconds the followers may take from the first connection to the last end event.
FOLLOW_TIMEOUT = 180.0


def _stream_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def _describe(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 0.50):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, "
        f"max {max(values, default=0.0):.1f} ms"
    )


def _expected(redis: Any, request_hash: str) -> list[tuple[str, dict[str, str]]]:
    """The measured build's stream as the daemon's Redis holds it: ``(id, fields)`` in order."""
    image_key = redis.call("HGET", f"asud:request:{request_hash}", "image_key")
    if not image_key:
        raise RuntimeError(f"request {request_hash} has no build record")
    raw = redis.call("XRANGE", f"asud:log:{image_key}", "-", "+")
    return [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in raw]


def summarise(seen: Followers, expected: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """Delays (ms) of every live line delivery, the split of each, and how complete each follower was."""
    expected_ids = [entry_id for entry_id, _ in expected]
    lines = [(entry_id, fields) for entry_id, fields in expected if fields.get("kind") == "line"]
    delays: list[float] = []
    to_redis = [_stream_ms(entry_id) - float(fields["t"]) * 1000 for entry_id, fields in lines]
    from_redis: list[float] = []
    backlog = 0
    complete = 0
    per_line: dict[str, list[float]] = {}
    arrivals: dict[str, list[float]] = {}
    statuses: dict[int, int] = {}
    for answer in seen.answers:
        statuses[answer.status] = statuses.get(answer.status, 0) + 1
        if [event.id for event in answer.events if event.id] == expected_ids:
            complete += 1
        for event in answer.events:
            if event.event != "line":
                continue
            printed = float(event.data["t"])
            if printed < answer.first_bytes:
                backlog += 1
                continue
            delays.append((event.received - printed) * 1000)
            per_line.setdefault(event.id, []).append(delays[-1])
            arrivals.setdefault(event.id, []).append(event.received)
            from_redis.append(event.received * 1000 - _stream_ms(event.id))
    printed_at = [float(fields["t"]) for _, fields in lines]
    first = min(printed_at, default=0.0)
    text = {entry_id: fields for entry_id, fields in lines}
    slowest = sorted(per_line.items(), key=lambda item: -max(item[1]))[:5]
    worst = [
        f"{max(values):.0f} ms at +{float(text[entry_id]['t']) - first:.2f} s "
        f"({text[entry_id]['step']}: {text[entry_id]['text'][:60]!r})"
        for entry_id, values in slowest
    ]
    return {
        "delays": delays,
        "to_redis": to_redis,
        "from_redis": from_redis,
        "backlog": backlog,
        "complete": complete,
        "statuses": statuses,
        "lines": len(lines),
        "entries": len(expected_ids),
        "span": (max(printed_at) - min(printed_at)) if printed_at else 0.0,
        "first_printed": first,
        "worst": worst,
        "spread": [(max(times) - min(times)) * 1000 for times in arrivals.values()],
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class _Cpu:
    """CPU seconds used while following: by the daemon, by the bench process, and by the whole machine
    (busy and total core-seconds) — whether the daemon or the machine was the limit."""

    daemon: float = 0.0
    bench: float = 0.0
    busy: float = 0.0
    total: float = 0.0

    @classmethod
    def now(cls, pid: int) -> _Cpu:
        busy, total = busy_cores()
        times = os.times()
        return cls(_cpu_seconds(pid), times.user + times.system, busy, total)

    def __sub__(self, other: _Cpu) -> _Cpu:
        return _Cpu(
            self.daemon - other.daemon,
            self.bench - other.bench,
            self.busy - other.busy,
            self.total - other.total,
        )


@dataclass
class _Followed:
    """One followed build: what the followers saw, the stream it wrote, the daemon's RSS around it."""

    seen: Followers
    expected: list[tuple[str, dict[str, str]]]
    rss_before: float
    rss_after: float
    seconds: float
    cpu: _Cpu


def _follow_one(context: Context, daemon: Daemon, count: int, packages: list[str]) -> _Followed:
    """Queue holding builds and then ``packages``' build, follow it with ``count`` SSE followers to its
    end, and wait for every build to be done."""
    holding = [
        request_body(VERSION, TARGET, PROFILE, context.fresh_packages(), "bench/live-hold")
        for _ in range(HOLDING[context.mode.name])
    ]
    with Http(daemon.url) as client, context.world.redis(daemon) as redis:
        *held, measured = submit_all(
            client, [*holding, request_body(VERSION, TARGET, PROFILE, packages, "bench/live")]
        )
        rss_before = daemon.rss_mb()[0]
        cpu = _Cpu.now(daemon.pid)
        started = time.perf_counter()
        seen = follow_all(
            "127.0.0.1",
            daemon.port,
            f"/api/v1/build/{measured}/log",
            count,
            sample=lambda: daemon.rss_mb()[0],
            at_end=lambda: (time.perf_counter(), _Cpu.now(daemon.pid), daemon.rss_mb()[0]),
            timeout=FOLLOW_TIMEOUT,
        )
        ended, cpu_after, rss_after = seen.ended
        seconds = ended - started
        cpu = cpu_after - cpu
        wait_all(client, [*held, measured])
        return _Followed(seen, _expected(redis, measured), rss_before, rss_after, seconds, cpu)


def _builds(count: int) -> str:
    return f"{count} build" if count == 1 else f"{count} builds"


def run(context: Context) -> Figure:
    count = FOLLOWERS[context.mode.name]
    holding = HOLDING[context.mode.name]
    figure = Figure(
        "live log fan-out",
        f"a daemon with `[build] workers = 1` on the bench's data directory; {_builds(holding)} of other "
        "selections POSTed first hold the slot, then the measured one (the device's defaults + "
        f"{len(MEASURED_PACKAGES)} add-ons, one `Installing … to root...` line per package as the "
        "ImageBuilder prints it), which waits in the "
        f"queue while {count} SSE followers (`GET /api/v1/build/{{hash}}/log`, `Accept: text/event-stream`, "
        "HTTP/1.1 keep-alive, chunked, one connection each) connect from one single-threaded asyncio loop "
        "in the bench process, which only timestamps each socket read (events are decoded afterwards); "
        "each follower reads until its `end` event. Per line and follower: delay = the follower's read "
        "(bench `time.time()`) minus the line's `t` in the build's Redis stream (the daemon's clock when it "
        "read the line from the build's pipe, ms precision); a delivery of a line printed before that "
        "follower's answer began is backlog and left out (counted). Every follower must get every entry "
        "of the stream, each once, in order (compared with `XRANGE` of the stream afterwards). RSS = "
        "the daemon process's VmRSS (not its redis-server), sampled every 100 ms while following, minus "
        "the value before the followers connected. The client's own loop lag (a 5 ms ticker) is reported.",
        f"{count} SSE followers: line printed → received p99 < {MAX_P99_MS:.0f} ms, "
        f"RSS growth < {MAX_RSS_GROWTH_MB:.0f} MB",
    )
    world = context.world
    daemon = world.start_daemon(workers=1, name="live-logs")
    profile: list[str] = []
    try:
        figure.details.append(f"load average before: {loadavg()}")
        followed = _follow_one(context, daemon, count, MEASURED_PACKAGES)
        figure.details.append(f"load average after: {loadavg()}")
        if context.profile:
            # An extra followed build (one add-on fewer: another image) while py-spy samples the daemon.
            profile = profiled(
                daemon.pid,
                lambda: _follow_one(context, daemon, count, MEASURED_PACKAGES[:-1]),
                seconds=max(5.0, followed.seconds),
            )
    finally:
        world.stop_daemon(daemon)
    seen, cpu = followed.seen, followed.cpu
    numbers = summarise(seen, followed.expected)
    delays = numbers["delays"]
    rss_peak = max((value for _, value in seen.samples), default=followed.rss_after)
    growth = max(rss_peak, followed.rss_after) - followed.rss_before
    p99 = percentile(delays, 0.99)
    all_delivered = numbers["complete"] == count and numbers["statuses"] == {200: count}
    figure.value = (
        f"p99 {p99:.1f} ms (p50 {percentile(delays, 0.50):.1f}, max {max(delays, default=0.0):.1f}), "
        f"+{growth:.0f} MB RSS, {numbers['complete']}/{count} followers got all {numbers['lines']} lines"
    )
    figure.met = bool(delays) and p99 < MAX_P99_MS and growth < MAX_RSS_GROWTH_MB and all_delivered
    lines_per_second = numbers["lines"] / numbers["span"] if numbers["span"] else 0.0
    reads = [answer.reads for answer in seen.answers]
    if seen.timed_out:
        figure.details.append(f"**the followers had not all finished after {FOLLOW_TIMEOUT:.0f} s**")
    figure.details += [
        f"the build printed {numbers['lines']} lines over {numbers['span']:.2f} s "
        f"({lines_per_second:,.0f} lines/s; {numbers['entries']} stream entries with stages, start, end); "
        f"followers connected {max(0.0, numbers['first_printed'] - seen.ready_at):.2f} s before its "
        "first line",
        f"deliveries: {len(delays):,} live, {numbers['backlog']:,} from the backlog; answers "
        f"{numbers['statuses']}; {numbers['complete']} of {count} followers got exactly the stream's "
        f"{numbers['entries']} entries in order, in {median(reads):.0f} socket reads each (median)",
        f"line printed → received: {_describe(delays)}",
        "slowest lines (max over followers): " + "; ".join(numbers["worst"]),
        f"split — daemon read → in Redis (stream id): {_describe(numbers['to_redis'])}; in Redis → "
        f"follower read: {_describe(numbers['from_redis'])}",
        "spread of one line over the followers (last follower's read minus the first's: the daemon "
        f"writing to {count} sockets): {_describe(numbers['spread'])}",
        f"daemon RSS: {followed.rss_before:.0f} MB before, peak {rss_peak:.0f} MB while following, "
        f"{followed.rss_after:.0f} MB after (+{growth:.1f} MB); following took {followed.seconds:.1f} s",
        f"bench client loop lag (5 ms ticker): {_describe(seen.lag_ms)}",
        f"CPU while following ({followed.seconds:.1f} s, connections and the builds ahead included): daemon "
        f"{cpu.daemon:.1f} s, bench client {cpu.bench:.1f} s, whole machine {cpu.busy:.1f} of "
        f"{cpu.total:.1f} core-seconds busy",
        *profile,
    ]
    return figure
