"""Charts drawn on the server as inline SVG: stacked columns and lines over time buckets, ranked bars.

No script and no chart library: the page stays within its Content-Security-Policy, works offline and
prints. Colours are CSS classes (``tone-0`` … ``tone-5``, ``tone-ok``, ``tone-error``) so the stylesheet
gives them light and dark values; nothing is styled inline (the policy refuses inline styles). Every
chart is ``role="img"`` with a ``<title>`` and ``<desc>``; each bar or point carries its exact number in
a ``<title>`` (a tooltip) and in ``data-value``. The page adds a table with the same numbers.

    svg = column_chart("requests", title="Build requests", description="…",
                       buckets=["13:00", "14:00"], series=[Series("24.10.4", (2, 0))])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import attrs
from markupsafe import Markup, escape

#: The drawing's coordinate system. The SVG scales to the width of its column, and its text with it: at
#: 400 units a chart's 12-unit text is about 12 px in a desktop column and 10 px on a phone.
WIDTH = 400
COLUMN_HEIGHT = 210
FONT_SIZE = 12
#: Rough advance of one character of the page's sans-serif font, in font sizes (for label spacing).
CHAR_WIDTH = 0.62
TOP, RIGHT, BOTTOM = 12, 8, 26
#: Height of one entry of a ranked bar list: its name above, its bar below.
BAR_ROW = 34
BAR_THICKNESS = 12
#: Names of a ranked bar list longer than this are shortened in the drawing (the table has them whole).
MAX_NAME_CHARS = 48

Formatter = Callable[[float], str]


def format_count(value: float) -> str:
    """``1234`` → ``"1,234"``."""
    return f"{round(value):,}"


@attrs.frozen
class Series:
    """One named row of values, one per bucket; ``None`` is "no value" (a gap in a line)."""

    name: str
    values: tuple[float | None, ...]
    #: CSS class suffix of its colour: ``"0"``…``"5"`` (the palette), ``"ok"`` or ``"error"``.
    tone: str = "0"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _text_width(text: str) -> float:
    return len(text) * FONT_SIZE * CHAR_WIDTH


def nice_ticks(largest: float, *, count: int = 4, whole: bool = True) -> list[float]:
    """Round tick values from 0 up to at least ``largest`` (at most ``count`` + 1 of them); steps are
    1, 2 or 5 times a power of ten, never below 1 when ``whole`` (counts)."""
    if largest <= 0:
        return [0.0, 1.0]
    raw = largest / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(1.0, math.ceil(step))
    top = math.ceil(largest / step - 1e-9) * step
    return [i * step for i in range(round(top / step) + 1)]


def _open(chart_id: str, title: str, description: str, height: float) -> list[str]:
    name = escape(chart_id)
    return [
        f'<svg class="chart" id="{name}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {_number(height)}" width="{WIDTH}" height="{_number(height)}" '
        f'font-size="{FONT_SIZE}" role="img" aria-labelledby="{name}-title {name}-desc">',
        f'<title id="{name}-title">{escape(title)}</title>',
        f'<desc id="{name}-desc">{escape(description)}</desc>',
    ]


@attrs.frozen
class _Frame:
    """The plot area of a chart over buckets: where a bucket's band and a value lie."""

    left: float
    ticks: list[float]
    buckets: int
    height: float = COLUMN_HEIGHT

    @property
    def band(self) -> float:
        return (WIDTH - RIGHT - self.left) / self.buckets

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    def x(self, index: int) -> float:
        """The centre of bucket ``index``."""
        return self.left + (index + 0.5) * self.band

    def y(self, value: float) -> float:
        return self.bottom - value / self.ticks[-1] * (self.bottom - TOP)


def _frame(
    buckets: Sequence[str], largest: float, fmt: Formatter, whole: bool, fixed_top: float | None
) -> _Frame:
    ticks = nice_ticks(fixed_top if fixed_top is not None else largest, whole=whole)
    left = max(24.0, max(_text_width(fmt(tick)) for tick in ticks) + 10)
    return _Frame(left=left, ticks=ticks, buckets=max(1, len(buckets)))


def _axes(frame: _Frame, buckets: Sequence[str], fmt: Formatter) -> list[str]:
    parts = ['<g class="chart-grid">']
    for tick in frame.ticks:
        y = _number(frame.y(tick))
        parts.append(f'<line x1="{_number(frame.left)}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
    parts.append("</g>")
    parts.append('<g class="chart-labels">')
    for tick in frame.ticks:
        parts.append(
            f'<text class="tick-y" x="{_number(frame.left - 6)}" '
            f'y="{_number(frame.y(tick) + FONT_SIZE * 0.35)}" text-anchor="end">{escape(fmt(tick))}</text>'
        )
    # Label every step-th bucket, counted back from the newest so "now" is always labelled. A label at an
    # edge is pulled inside the drawing, by up to half its width: the spacing leaves room for that.
    widest = max((_text_width(label) for label in buckets), default=0.0)
    step = max(1, math.ceil((1.5 * widest + 8) / frame.band))
    last = len(buckets) - 1
    for index, label in enumerate(buckets):
        if (last - index) % step:
            continue
        half = _text_width(label) / 2
        x = min(max(frame.x(index), half + 1), WIDTH - half - 1)
        parts.append(
            f'<text class="tick-x" x="{_number(x)}" y="{_number(frame.bottom + FONT_SIZE + 6)}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</g>")
    return parts


def column_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    buckets: Sequence[str],
    series: Sequence[Series],
    names: Sequence[str] | None = None,
    fmt: Formatter = format_count,
) -> Markup:
    """Stacked columns, one per bucket (``buckets`` are the short axis labels; ``names`` the long ones
    used in tooltips, default the same); series are stacked in the order given, the first at the bottom."""
    names = list(names or buckets)
    totals = [sum(s.values[i] or 0.0 for s in series) for i in range(len(buckets))]
    frame = _frame(buckets, max(totals, default=0.0), fmt, whole=True, fixed_top=None)
    parts = _open(chart_id, title, description, frame.height) + _axes(frame, buckets, fmt)
    width = frame.band * 0.72
    parts.append('<g class="chart-marks">')
    for index in range(len(buckets)):
        base = 0.0
        for entry in series:
            value = entry.values[index] or 0.0
            if value <= 0:
                continue
            top, bottom = frame.y(base + value), frame.y(base)
            base += value
            parts.append(
                f'<rect class="tone-{escape(entry.tone)}" x="{_number(frame.x(index) - width / 2)}" '
                f'y="{_number(top)}" width="{_number(width)}" height="{_number(bottom - top)}" '
                f'data-bucket="{escape(names[index])}" data-series="{escape(entry.name)}" '
                f'data-value="{_number(value)}">'
                f"<title>{escape(names[index])} · {escape(entry.name)}: {escape(fmt(value))}</title></rect>"
            )
    parts.append("</g></svg>")
    return Markup("".join(parts))


def line_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    buckets: Sequence[str],
    series: Sequence[Series],
    names: Sequence[str] | None = None,
    fmt: Formatter = format_count,
    top: float | None = None,
    whole: bool = False,
) -> Markup:
    """Lines over buckets with a dot per value; ``None`` values break the line. ``top`` fixes the scale
    (1.0 for a rate), otherwise it fits the largest value."""
    names = list(names or buckets)
    largest = max((v for s in series for v in s.values if v is not None), default=0.0)
    frame = _frame(buckets, largest, fmt, whole=whole, fixed_top=top)
    parts = _open(chart_id, title, description, frame.height) + _axes(frame, buckets, fmt)
    parts.append('<g class="chart-marks">')
    for entry in series:
        runs: list[list[str]] = [[]]
        for index, value in enumerate(entry.values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{_number(frame.x(index))},{_number(frame.y(value))}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline class="tone-{escape(entry.tone)}" points="{" ".join(run)}"/>')
        for index, value in enumerate(entry.values):
            if value is None:
                continue
            parts.append(
                f'<circle class="tone-{escape(entry.tone)}" cx="{_number(frame.x(index))}" '
                f'cy="{_number(frame.y(value))}" r="3.5" data-bucket="{escape(names[index])}" '
                f'data-series="{escape(entry.name)}" data-value="{value:g}">'
                f"<title>{escape(names[index])} · {escape(entry.name)}: {escape(fmt(value))}</title></circle>"
            )
    parts.append("</g></svg>")
    return Markup("".join(parts))


def _shorten(name: str) -> str:
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def bar_list(
    chart_id: str,
    *,
    title: str,
    description: str,
    items: Sequence[tuple[str, float]],
    fmt: Formatter = format_count,
    tone: str = "0",
) -> Markup:
    """Ranked horizontal bars, largest first as given: each name above its bar, the number after it."""
    height = TOP + BAR_ROW * max(1, len(items))
    parts = _open(chart_id, title, description, height)
    largest = max((value for _, value in items), default=0.0) or 1.0
    room = WIDTH - RIGHT - max((_text_width(fmt(value)) for _, value in items), default=0.0) - 8
    parts.append('<g class="chart-marks">')
    for index, (name, value) in enumerate(items):
        top = TOP / 2 + index * BAR_ROW
        length = max(1.0, value / largest * room)
        bar_y = top + FONT_SIZE + 4
        parts.append(
            f'<g class="bar" data-name="{escape(name)}" data-value="{_number(value)}">'
            f"<title>{escape(name)}: {escape(fmt(value))}</title>"
            f'<text class="bar-name" x="0" y="{_number(top + FONT_SIZE)}">{escape(_shorten(name))}</text>'
            f'<rect class="tone-{escape(tone)}" x="0" y="{_number(bar_y)}" width="{_number(length)}" '
            f'height="{BAR_THICKNESS}" rx="2"/>'
            f'<text class="bar-value" x="{_number(length + 6)}" y="{_number(bar_y + BAR_THICKNESS - 2)}">'
            f"{escape(fmt(value))}</text></g>"
        )
    parts.append("</g></svg>")
    return Markup("".join(parts))


__all__ = [
    "COLUMN_HEIGHT",
    "MAX_NAME_CHARS",
    "WIDTH",
    "Series",
    "bar_list",
    "column_chart",
    "format_count",
    "line_chart",
    "nice_ticks",
]
