"""What one figure measured against its target and its ceiling, and ``results.md`` rendered from all."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One row of the results table, with the method and the raw numbers behind it."""

    name: str
    method: str
    target: str
    #: The headline value as shown in the table ("8,120 req/s (0.83 x bare)").
    value: str = "not measured"
    #: ``True``/``False`` against the target; ``None`` when the target is "report" only.
    met: bool | None = None
    #: The yardstick measured in the same run ("bare Resource 7,480 req/s"), "-" for absolute targets.
    ceiling: str = "-"
    #: ``False`` for a figure this daemon cannot be measured on yet (its ``value`` says why); not a miss.
    measured: bool = True
    #: Extra lines under the figure's own heading: per-run numbers, splits, load average, profiles.
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if not self.measured:
            return "not measured"
        if self.met is None:
            return "reported"
        return "met" if self.met else "**MISSED**"


def median(values: Sequence[float]) -> float:
    """The median, 0.0 for no values (a figure whose runs all failed still renders)."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.99 → p99) of ``values``."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def table(figures: Sequence[Figure]) -> list[str]:
    """The markdown table: each figure with its target, value, ceiling and verdict."""
    lines = [
        "| figure | target | value | ceiling (same run) | verdict |",
        "|---|---|---|---|---|",
    ]
    for figure in figures:
        lines.append(
            f"| {figure.name} | {figure.target} | {figure.value} | {figure.ceiling} | {figure.verdict} |"
        )
    return lines


def render(figures: Sequence[Figure], header: Sequence[str], notes: Sequence[str] = ()) -> str:
    """``results.md``: the machine header, the table of figures against targets, then each method."""
    lines = ["# asud benchmark results", "", *header, "", *table(figures), ""]
    lines += list(notes)
    for figure in figures:
        lines += ["", f"## {figure.name}", "", f"**Method.** {figure.method}", ""]
        lines += [f"- {detail}" for detail in figure.details]
        lines.append(f"- time taken by this figure: {figure.seconds:.0f} s")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
