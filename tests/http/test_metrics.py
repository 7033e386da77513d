"""``/metrics`` reflects a scripted sequence of requests exactly (see ``test_stats_routes``)
(was tests/api/test_metrics.py)."""

from __future__ import annotations

import re

import pytest_twisted

from asud import __version__
from asud.http.metrics import LatencyHistogram, latency_of, render_metrics
from asud.store.stats_window import Totals
from tests.http.test_stats_routes import Scripted, scripted

__all__ = ["scripted"]


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value of every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


@pytest_twisted.ensureDeferred
async def test_metrics_after_the_script(scripted: Scripted) -> None:
    # The build routes' answers as the root reports them to its observers (method, route template, status).
    latency = latency_of(scripted.app)
    assert latency_of(scripted.app) is latency and latency.observe in scripted.app.observers
    for status in (202, 202, 200, 400):
        latency.observe("POST", "/api/v1/build", status, 0.004)
    latency.observe("POST", "/api/build-request", 202, 0.02)

    response = await scripted.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)
    node_info = f'asud_node_info{{node="{scripted.app.config.node_name()}",version="{__version__}"}}'
    assert values[node_info] == 1  # which daemon of a cluster answered
    assert values["asud_build_queue_length"] == 0
    assert values["asud_build_requests_total"] == 4
    assert values["asud_cache_hits_total"] == 1 and values["asud_cache_misses_total"] == 3
    assert values['asud_builds_total{outcome="done"}'] == 1
    assert values['asud_builds_total{outcome="failed"}'] == 1
    assert values["asud_build_duration_seconds_count"] == 2
    assert values['asud_build_duration_seconds_bucket{le="+Inf"}'] == 2
    assert values['asud_build_duration_seconds_bucket{le="5"}'] == 2
    assert values["asud_imagebuilder_cache_bytes"] == 0
    assert values["asud_store_bytes"] == len("built\n")
    latency_count = (
        'asud_http_request_duration_seconds_count{method="POST",route="/api/v1/build",status="%s"}'
    )
    assert values[latency_count % "202"] == 2 and values[latency_count % "200"] == 1
    assert values[latency_count % "400"] == 1
    legacy = (
        'asud_http_request_duration_seconds_count{method="POST",route="/api/build-request",status="202"}'
    )
    assert values[legacy] == 1
    # every family has HELP and TYPE, and the histogram buckets are cumulative
    for family in re.findall(r"^# TYPE (\S+) ", response.text, re.M):
        assert f"# HELP {family} " in response.text
    bounds = [
        value for name, value in values.items() if name.startswith("asud_build_duration_seconds_bucket")
    ]
    assert bounds == sorted(bounds)
    # a scrape is counted too, under its route template, as is any other answer
    await scripted.client.get("/api/v1/stats/popular_targets")
    again = samples((await scripted.client.get("/metrics")).text)
    assert again['asud_http_request_duration_seconds_count{method="GET",route="/metrics",status="200"}'] >= 1
    route = '{method="GET",route="/api/v1/stats/popular_targets",status="200"}'
    assert again["asud_http_request_duration_seconds_count" + route] == 1


@pytest_twisted.ensureDeferred
async def test_metrics_need_redis(scripted: Scripted) -> None:
    scripted.redis_server.stop()
    response = await scripted.client.get("/metrics")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_latency_buckets_are_cumulative_and_labels_escaped() -> None:
    histogram = LatencyHistogram()
    histogram.observe("GET", '/a"b\\c', 200, 0.03)
    histogram.observe("GET", '/a"b\\c', 200, 7.0)
    text = render_metrics(queue_length=0, totals=Totals(), imagebuilder_bytes=0, store_bytes=0, node='n"1',
                          latency=histogram)
    values = samples(text)
    labels = 'method="GET",route="/a\\"b\\\\c",status="200"'
    assert values[f'asud_http_request_duration_seconds_bucket{{{labels},le="0.025"}}'] == 0
    assert values[f'asud_http_request_duration_seconds_bucket{{{labels},le="0.05"}}'] == 1
    assert values[f'asud_http_request_duration_seconds_bucket{{{labels},le="10"}}'] == 2
    assert values[f'asud_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}'] == 2
    assert values[f"asud_http_request_duration_seconds_sum{{{labels}}}"] == 7.03
    assert values['asud_builds_total{outcome="done"}'] == 0
    assert values[f'asud_node_info{{node="n\\"1",version="{__version__}"}}'] == 1
