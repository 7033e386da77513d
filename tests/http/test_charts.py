"""The SVG charts: well-formed, accessible, geometry proportional to the numbers, labels that fit
(was tests/web/test_charts.py)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from asud.http.charts import (
    COLUMN_HEIGHT,
    MAX_NAME_CHARS,
    WIDTH,
    Series,
    bar_list,
    column_chart,
    format_count,
    line_chart,
    nice_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def marks(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(f"{SVG}{tag}"))


def test_nice_ticks() -> None:
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(42) == [0, 20, 40, 60]
    assert nice_ticks(1.0, whole=False) == [0, 0.5, 1.0]
    assert nice_ticks(0.3, whole=False) == pytest.approx([0, 0.1, 0.2, 0.3])


def test_format_count() -> None:
    assert format_count(3.0) == "3"
    assert format_count(1234) == "1,234"


def test_column_chart_is_accessible_and_stacks_in_proportion() -> None:
    svg = column_chart(
        "requests",
        title="Build requests",
        description="3 requests",
        buckets=["12:00", "13:00", "14:00"],
        names=["2026-11-27 12:00", "2026-11-27 13:00", "2026-11-27 14:00"],
        series=[Series("24.10.4", (2, 0, 1)), Series("25.12.1", (2, 0, 0), tone="1")],
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("viewBox") == f"0 0 {WIDTH} {COLUMN_HEIGHT}"
    assert root.get("aria-labelledby") == "requests-title requests-desc"
    assert root.find(f"{SVG}title").text == "Build requests"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "3 requests"  # type: ignore[union-attr]
    bars = marks(root, "rect")
    # Zero values draw nothing: 24.10.4 at 12:00 and 14:00, 25.12.1 at 12:00.
    assert [(b.get("data-bucket"), b.get("data-series"), b.get("data-value")) for b in bars] == [
        ("2026-11-27 12:00", "24.10.4", "2"),
        ("2026-11-27 12:00", "25.12.1", "2"),
        ("2026-11-27 14:00", "24.10.4", "1"),
    ]
    assert bars[1].get("class") == "tone-1"
    heights = [float(b.get("height", 0)) for b in bars]
    assert heights[0] == pytest.approx(heights[1]) == pytest.approx(2 * heights[2])
    # Stacked: the second series sits right on top of the first.
    assert float(bars[1].get("y", 0)) + heights[1] == pytest.approx(float(bars[0].get("y", 0)))
    assert bars[0].find(f"{SVG}title").text == "2026-11-27 12:00 · 24.10.4: 2"  # type: ignore[union-attr]
    # Every mark stays inside the drawing.
    for bar, height in zip(bars, heights, strict=True):
        x, y = float(bar.get("x", -1)), float(bar.get("y", -1))
        assert x >= 0 and x + float(bar.get("width", 0)) <= WIDTH
        assert y >= 0 and y + height <= COLUMN_HEIGHT
    y_ticks = [t.text for t in marks(root, "text") if t.get("class") == "tick-y"]
    assert y_ticks == ["0", "1", "2", "3", "4"]


def test_axis_labels_are_thinned_so_they_do_not_collide() -> None:
    days = [f"{day:02d} Nov" for day in range(1, 31)]
    root = parse(column_chart("d", title="t", description="d", buckets=days, series=[Series("x", (1,) * 30)]))
    labels = [t for t in marks(root, "text") if t.get("class") == "tick-x"]
    assert 3 <= len(labels) < 30
    assert labels[-1].text == "30 Nov"  # the newest bucket is always labelled
    positions = [float(t.get("x", 0)) for t in labels]
    gaps = [b - a for a, b in itertools.pairwise(positions)]
    assert min(gaps) > len("30 Nov") * 12 * 0.6


def test_names_are_escaped() -> None:
    svg = column_chart(
        "x", title="<b>", description="a & b", buckets=["1"], series=[Series('"><script>', (1,))]
    )
    root = parse(svg)  # still well-formed
    assert "<script>" not in svg
    assert marks(root, "rect")[0].get("data-series") == '"><script>'


def test_line_chart_breaks_at_missing_values() -> None:
    svg = line_chart(
        "rate",
        title="Cache hit rate",
        description="d",
        buckets=["a", "b", "c", "d", "e"],
        series=[Series("Hit rate", (0.5, 1.0, None, 0.25, None), tone="ok")],
        fmt=lambda rate: f"{rate * 100:g}%",
        top=1.0,
    )
    root = parse(svg)
    points = marks(root, "circle")
    assert [p.get("data-value") for p in points] == ["0.5", "1", "0.25"]
    lines = marks(root, "polyline")
    assert len(lines) == 1 and len(lines[0].get("points", "").split()) == 2
    ys = [float(p.get("cy", 0)) for p in points]
    bottom = COLUMN_HEIGHT - 26
    assert bottom - ys[1] == pytest.approx(2 * (bottom - ys[0])) == pytest.approx(4 * (bottom - ys[2]))
    assert [t.text for t in marks(root, "text") if t.get("class") == "tick-y"] == ["0%", "50%", "100%"]


def test_bar_list_ranks_with_numbers_and_shortens_long_names() -> None:
    long_name = "luci-i18n-" + "x" * 80
    svg = bar_list(
        "packages",
        title="Popular packages",
        description="d",
        items=[("htop", 4.0), ("luci", 2.0), (long_name, 1.0)],
    )
    root = parse(svg)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert [(g.get("data-name"), g.get("data-value")) for g in groups] == [
        ("htop", "4"),
        ("luci", "2"),
        (long_name, "1"),
    ]
    widths = [float(g.find(f"{SVG}rect").get("width", 0)) for g in groups]  # type: ignore[union-attr]
    assert widths[0] == pytest.approx(2 * widths[1], rel=1e-3) == pytest.approx(4 * widths[2], rel=1e-3)
    assert max(widths) < WIDTH
    values = [t.text for t in marks(root, "text") if t.get("class") == "bar-value"]
    assert values == ["4", "2", "1"]
    names = [t.text or "" for t in marks(root, "text") if t.get("class") == "bar-name"]
    assert names[:2] == ["htop", "luci"]
    assert len(names[2]) == MAX_NAME_CHARS and names[2].endswith("…")
    assert groups[2].find(f"{SVG}title").text == f"{long_name}: 1"  # type: ignore[union-attr]
