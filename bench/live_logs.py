"""Live-log fan-out (500 SSE followers of one build): not measurable yet — the daemon streams no build
logs until the live-log issue is built. The row stays in the table so the figure is not forgotten."""

from __future__ import annotations

from bench.context import Context
from bench.results import Figure

FOLLOWERS = 500


def run(context: Context) -> Figure:
    return Figure(
        "live log fan-out",
        f"to come with the live-log issue: {FOLLOWERS} SSE followers of one build on 127.0.0.1; for each "
        "line the build prints, the delay until every follower received it; the daemon's RSS growth.",
        f"{FOLLOWERS} SSE followers: line printed → received p99 < 100 ms, RSS growth < 100 MB",
        value="not measured: needs live logs",
        measured=False,
    )
