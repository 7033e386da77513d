"""The benchmark suite: its parsers, clients and report (fast), and one tiny run of every figure (slow)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from asud.config import to_toml
from bench.daemon import events
from bench.live_logs import summarise as summarise_followers
from bench.load import head_load, parse_wrk, release_together
from bench.profile import summarise
from bench.redis_probe import RedisProbe
from bench.results import Figure, percentile, render
from bench.sse import Followers, parse_answer
from tests.support.redis import RedisProcess
from tests.support.requirements import require_executable

ROOT = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/api/v1/build/abc
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.19ms    1.02ms  20.00ms   90.00%
    Req/Sec     7.65k   300.00     8.00k    70.00%
  Latency Distribution
     50%    4.00ms
     75%    4.50ms
     90%    5.00ms
     99%    1.20s
  76482 requests in 10.00s, 1.02GB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:   7646.43
Transfer/sec:    104.51MB
"""


def test_wrk_output_is_parsed() -> None:
    run = parse_wrk(WRK_OUTPUT)
    assert run.requests_per_second == pytest.approx(7646.43)
    assert run.latency_avg_ms == pytest.approx(4.19)
    assert run.latency_p99_ms == pytest.approx(1200.0)
    assert run.bytes_per_second == pytest.approx(104.51 * 1024**2)
    assert (run.requests, run.bad_responses, run.socket_errors) == (76482, 5, 3)


def test_unexpected_wrk_output_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        parse_wrk("wrk: connection refused")


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.50), percentile(values, 0.99), percentile(values, 1.0)) == (50, 99, 100)
    assert percentile([], 0.99) == 0.0


def test_profile_summary_shares() -> None:
    raw = "main (app.py:1);handler (asud/http/x.py:2) 3\nmain (app.py:1);idle (loop.py:9) 1\n"
    own, inclusive = summarise(raw)
    assert own[0] == ("handler (asud/http/x.py:2)", 0.75)
    assert inclusive == [("handler (asud/http/x.py:2)", 0.75)]  # only asud's own functions


def test_results_table_shows_every_figure_against_its_target_and_ceiling() -> None:
    figures = [
        Figure("a", "method a", "≥ 1", value="2", met=True, ceiling="bare 3", details=["loadavg 1"]),
        Figure("b", "method b", "≤ 1", value="2", met=False),
        Figure("c", "method c", "report", value="3 s"),
        Figure("d", "method d", "p99 < 1", value="not measured: needs x", measured=False),
    ]
    text = render(figures, ["- date: today"])
    assert "| a | ≥ 1 | 2 | bare 3 | met |" in text
    assert "| b | ≤ 1 | 2 | - | **MISSED** |" in text
    assert "| c | report | 3 s | - | reported |" in text
    assert "| d | p99 < 1 | not measured: needs x | - | not measured |" in text
    assert "**Method.** method b" in text and "- loadavg 1" in text


def test_settings_are_written_as_toml() -> None:
    settings = {
        "data_dir": "/tmp/x",
        "http": {"listen": ["tcp:1:interface=127.0.0.1"], "access_log": False},
        "catalog": {"refresh_interval": 5.0},
        "distros": {"openwrt": {"upstream_url": "http://127.0.0.1:2", "public_keys": ["a\nb"]}},
    }
    assert tomllib.loads(to_toml(settings)) == settings


def test_json_log_events_are_read() -> None:
    text = '\x1e{"log_format": "asud started", "log_time": 1.5}\nnot json\n{"log_format": "x"}\n'
    assert [event["log_format"] for event in events(text)] == ["asud started", "x"]


def test_redis_probe_counts_builds_and_reads_stages(redis_server: RedisProcess) -> None:
    with RedisProbe(redis_server.socket_path) as redis:
        assert redis.builds() == 0
        assert redis.stage("abc") is None
        redis.call("HSET", "asud:request:abc", "image_key", "k1")
        redis.call("HSET", "asud:build:k1", "stage", "building_image")
        redis.call("HSET", "asud:build:k2", "stage", "init")
        redis.call("SET", "asud:other", "x")
        assert redis.builds() == 2
        assert redis.stage("abc") == "building_image"


def _sse_reads(
    events: list[tuple[str, str, dict[str, object]]], splits: list[int], at: float = 0.0
) -> list[tuple[float, bytes]]:
    """An SSE answer as a daemon sends it (chunked, a keepalive comment), cut into reads at ``splits``,
    the reads arriving at ``at``, ``at + 1`` …"""
    body = [b": keepalive\n\n"]
    body += [f"id: {i}\nevent: {e}\ndata: {json.dumps(d)}\n\n".encode() if i else
             f"event: {e}\ndata: {json.dumps(d)}\n\n".encode() for i, e, d in events]
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in body) + b"0\r\n\r\n"
    cuts = [0, *splits, len(raw)]
    return [(at + n, raw[start:stop]) for n, (start, stop) in enumerate(itertools.pairwise(cuts))]


def test_sse_answers_are_decoded_and_each_event_timed_by_the_read_that_completed_it() -> None:
    events = [("", "status", {"status": "queued"}), ("5-0", "line", {"t": 1.0, "text": "a"}),
              ("5-1", "end", {"status": "done"})]
    whole = _sse_reads(events, [])
    raw = whole[0][1]
    # Cut inside the second event's data and inside the third event's chunk header.
    second, third = raw.index(b'"a"'), raw.index(b"id: 5-1") - 4
    answer = parse_answer(_sse_reads(events, [raw.index(b"\r\n\r\n") + 4, second, third]))
    assert answer.status == 200 and answer.headers["content-type"] == "text/event-stream"
    assert [(event.id, event.event, event.data) for event in answer.events] == [
        (i, e, d) for i, e, d in events
    ]
    assert [event.received for event in answer.events] == [1.0, 2.0, 3.0]
    assert answer.first_bytes == 0.0


def test_live_log_summary_checks_every_entry_once_in_order_and_times_live_lines() -> None:
    expected = [
        ("5-0", {"kind": "start", "t": "0.5"}),
        ("5-1", {"kind": "line", "t": "1.000", "step": "s", "text": "a"}),
        ("6-0", {"kind": "line", "t": "1.002", "step": "s", "text": "b"}),
        ("7-0", {"kind": "end", "t": "1.1"}),
    ]
    events = [("5-0", "status", {"t": 0.5}), ("5-1", "line", {"t": 1.0}), ("6-0", "line", {"t": 1.002}),
              ("7-0", "end", {"t": 1.1})]
    def following(order: list[int]) -> list[tuple[float, bytes]]:
        """Connected at 0.05 s (the head and the first event), the rest read at 1.05 s."""
        reads = _sse_reads([events[n] for n in order], [])
        cut = reads[0][1].index(b"\n\n", reads[0][1].index(b"event: status")) + 2
        return [(0.05, reads[0][1][:cut]), (1.05, reads[0][1][cut:])]

    on_time = parse_answer(following([0, 1, 2, 3]))
    swapped = parse_answer(following([0, 2, 1, 3]))
    joined_late = parse_answer(_sse_reads(events, [], at=1.5))  # connected after both lines: backlog
    numbers = summarise_followers(Followers([on_time, swapped, joined_late], [0.1], 1.5), expected)
    assert numbers["complete"] == 2  # the follower that got the two lines swapped does not count
    assert numbers["lines"] == 2 and numbers["statuses"] == {200: 3} and numbers["backlog"] == 2
    assert sorted(numbers["delays"]) == pytest.approx([48, 48, 50, 50])  # read at 1.05, printed 1.0/1.002


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_HEAD(self) -> None:
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "1000000")  # a HEAD answer: the length, no body
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = json.dumps({"got": json.loads(body)}).encode()
        self.send_response(202)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_head_load_counts_answers_without_bodies(plain_server: str) -> None:
    ok = head_load(f"{plain_server}/ok", seconds=0.3, connections=2)
    assert ok.requests > 0 and ok.bad_responses == 0 and ok.socket_errors == 0
    missing = head_load(f"{plain_server}/missing", seconds=0.3, connections=2)
    assert missing.requests > 0 and missing.bad_responses == missing.requests


def test_requests_released_together_all_answer(plain_server: str) -> None:
    answers = release_together(plain_server, 5, lambda client: client.post("/build", {"n": 1}))
    assert [answer.status for answer in answers] == [202] * 5
    assert all(answer.json() == {"got": {"n": 1}} for answer in answers)


@pytest.mark.slow
def test_every_figure_runs_in_tiny_mode(tmp_path: Path) -> None:
    """``python -m bench --tiny``: every figure produces a value (whatever the numbers on this machine)."""
    require_executable("wrk", "wrk")
    require_executable("redis-server", "redis-server")
    out = tmp_path / "results.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--work-dir", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.exists(), run.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    for name in (
        "GET /api/v1/build",
        "POST /api/v1/build, cache hit",
        "MB image from /store",
        "impossible package selection",
        "build overhead",
        "cold build",
        "concurrent identical requests",
        "catalog at demo scale",
        "queue throughput",
        "live log fan-out",
        "reactor health",
    ):
        assert name in text
    assert "error:" not in text, run.stderr[-3000:]
    assert "| live log fan-out | 20 SSE followers" in text and "20/20 followers got all" in text
    # The table is printed too, and the exit status follows the verdicts.
    assert "| figure | target | value |" in run.stdout
    assert run.returncode == (1 if "**MISSED**" in text else 0), run.stderr[-3000:]
