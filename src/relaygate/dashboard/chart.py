"""The overview's 30-day chart, drawn on the server as SVG (no script, no library): one line
per series over the account's last 30 UTC days (``Usage.daily``), a y axis with round steps,
a date under every fifth day. The template draws what ``line_chart`` computes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relaygate.store.models import UsageDay

SERIES = ("accepted", "delivered", "bounced", "complained", "opened", "clicked")
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 28, 12, 28


@dataclass(frozen=True, kw_only=True)
class Chart:
    width: int
    height: int
    lines: list[tuple[str, str, int]]  # series, SVG points, total
    area: str  # the accepted series as a filled polygon's points
    ticks: list[tuple[float, str]]  # y position, label
    labels: list[tuple[float, str]]  # x position, label
    days: list[UsageDay]
    empty: bool


def last_days(today: float, count: int = 30) -> list[str]:
    end = datetime.fromtimestamp(today, UTC).date()
    return [(end - timedelta(days=count - 1 - i)).isoformat() for i in range(count)]


def nice_max(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^n at or above ``value`` (at least 4)."""
    if value <= 4:
        return 4
    exponent = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * exponent >= value:
            return step * exponent
    return 10 * exponent


def line_chart(rows: list[UsageDay], days: list[str]) -> Chart:
    by_day = {r.day: r for r in rows}
    filled = [by_day.get(d) or UsageDay(day=d) for d in days]
    top = nice_max(max((getattr(r, s) for r in filled for s in SERIES), default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(days) - 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - plot_h * value / top, 1)

    lines = []
    for series in SERIES:
        values = [getattr(r, series) for r in filled]
        points = " ".join(f"{round(LEFT + i * step, 1)},{y(v)}" for i, v in enumerate(values))
        lines.append((series, points, sum(values)))
    accepted = lines[0][1]
    area = f"{LEFT},{y(0)} {accepted} {round(LEFT + (len(days) - 1) * step, 1)},{y(0)}"
    ticks = [(y(top * k // 4), f"{top * k // 4:,}") for k in range(5)]
    labels = [
        (round(LEFT + i * step, 1), d[5:])
        for i, d in enumerate(days)
        if (len(days) - 1 - i) % 5 == 0
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        lines=lines,
        area=area,
        ticks=ticks,
        labels=labels,
        days=filled,
        empty=not any(total for _, _, total in lines),
    )
