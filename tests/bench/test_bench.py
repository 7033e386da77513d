"""The benchmark suite: its parsers and report (fast), and one tiny run of every figure (slow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import parse_wrk
from bench.profile import summarise
from bench.results import Figure, percentile, render
from tests.support.requirements import require_executable

ROOT = Path(__file__).resolve().parents[2]

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/api/v1/build/abc
  1 threads and 32 connections
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
    assert (run.requests, run.bad_responses, run.socket_errors) == (76482, 5, 3)


def test_unexpected_wrk_output_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        parse_wrk("wrk: connection refused")


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.50), percentile(values, 0.99), percentile(values, 1.0)) == (50, 99, 100)
    assert percentile([], 0.99) == 0.0


def test_profile_summary_shares() -> None:
    raw = "main (app.py:1);handler (sysup/api/x.py:2) 3\nmain (app.py:1);idle (loop.py:9) 1\n"
    own, inclusive = summarise(raw)
    assert own[0] == ("handler (sysup/api/x.py:2)", 0.75)
    assert inclusive == [("handler (sysup/api/x.py:2)", 0.75)]  # only sysup's own functions


def test_results_table_shows_every_figure_against_its_target() -> None:
    figures = [
        Figure("a", "method a", "≥ 1", value="2", met=True, details=["loadavg 1"]),
        Figure("b", "method b", "≤ 1", value="2", met=False),
        Figure("c", "method c", "report", value="3 s"),
    ]
    text = render(figures, ["- date: today"])
    assert "| a | 2 | ≥ 1 | met |" in text
    assert "| b | 2 | ≤ 1 | **MISSED** |" in text
    assert "| c | 3 s | report | reported |" in text
    assert "**Method.** method b" in text and "- loadavg 1" in text


@pytest.mark.slow
def test_every_figure_runs_in_tiny_mode(tmp_path: Path) -> None:
    """``python -m bench --tiny``: every figure produces a value (whatever the numbers on this machine)."""
    require_executable("wrk")
    out = tmp_path / "results.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--work-dir", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert out.exists(), run.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    for name in (
        "GET /api/v1/build",
        "POST /api/v1/build, cache hit",
        "impossible package selection",
        "build overhead",
        "cold build",
        "concurrent identical requests",
        "catalog sync",
        "queue throughput",
    ):
        assert name in text
    assert "error:" not in text, run.stderr[-3000:]
