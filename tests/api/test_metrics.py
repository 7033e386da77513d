"""``/metrics`` reflects a scripted sequence of requests exactly (see ``test_routes_stats``)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.api.test_routes_stats import scripted

__all__ = ["scripted"]


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value of every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_metrics_after_the_script(scripted: tuple[str, Any]) -> None:
    url, _ = scripted
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)
    assert values["sysup_build_queue_length"] == 0
    assert values["sysup_build_requests_total"] == 4
    assert values["sysup_cache_hits_total"] == 1 and values["sysup_cache_misses_total"] == 3
    assert values['sysup_builds_total{outcome="done"}'] == 1
    assert values['sysup_builds_total{outcome="failed"}'] == 1
    assert values["sysup_build_duration_seconds_count"] == 2
    assert values['sysup_build_duration_seconds_bucket{le="+Inf"}'] == 2
    assert values['sysup_build_duration_seconds_bucket{le="5"}'] == 2
    assert values["sysup_imagebuilder_cache_bytes"] == 0
    assert values["sysup_store_bytes"] == len("built\n")
    latency = 'sysup_http_request_duration_seconds_count{method="POST",route="/api/v1/build",status="%s"}'
    assert values[latency % "202"] == 2 and values[latency % "200"] == 1 and values[latency % "400"] == 1
    legacy = (
        'sysup_http_request_duration_seconds_count{method="POST",route="/api/build-request",status="202"}'
    )
    assert values[legacy] == 1
    # every family has HELP and TYPE, and the histogram buckets are cumulative
    for family in re.findall(r"^# TYPE (\S+) ", response.text, re.M):
        assert f"# HELP {family} " in response.text
    bounds = [
        value for name, value in values.items() if name.startswith("sysup_build_duration_seconds_bucket")
    ]
    assert bounds == sorted(bounds)
    # a scrape is counted too, under its route template
    again = samples(httpx.get(f"{url}/metrics").text)
    assert again['sysup_http_request_duration_seconds_count{method="GET",route="/metrics",status="200"}'] >= 1
