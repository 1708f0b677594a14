"""Opens and clicks over time as a server-rendered SVG: the geometry is pure (tested
without a browser); the template only draws the points it is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

WIDTH, HEIGHT, PAD = 640, 200, 28


@dataclass(frozen=True)
class Series:
    label: str
    css_class: str
    points: str  # "x,y x,y ..." for an SVG polyline
    total: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    series: list[Series]
    peak: int
    first: datetime | None
    last: datetime | None


def cumulative_chart(
    hours: Sequence[datetime], columns: dict[str, Sequence[int]], classes: dict[str, str]
) -> Chart:
    """Cumulative lines, one per column, over the hours (x) scaled to the largest total."""
    totals = {name: sum(values) for name, values in columns.items()}
    peak = max([*totals.values(), 1])
    count = len(hours)
    series = []
    for name, values in columns.items():
        running, points = 0, []
        for i, value in enumerate(values):
            running += value
            x = PAD + (WIDTH - 2 * PAD) * (i / (count - 1) if count > 1 else 0.5)
            y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * running / peak
            points.append(f"{x:.1f},{y:.1f}")
        series.append(Series(name, classes.get(name, ""), " ".join(points), totals[name]))
    return Chart(
        WIDTH, HEIGHT, series, peak, hours[0] if hours else None, hours[-1] if hours else None
    )
