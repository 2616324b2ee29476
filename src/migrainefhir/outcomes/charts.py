"""Chart geometry for the report: numbers in, rectangles, lines and labels out.

The templates draw these as inline SVG (templates/chart.svg.j2): no script, no font or image
from anywhere, the same bytes for the same data, sharp when printed, and each chart with a
title and a description for screen readers. Every number a chart shows is also in a table
next to it, so nothing is told by colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 68, 16, 16, 56  # margins: axis labels left, categories below


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    label: str  # the value, for the <title> a pointer or a screen reader shows


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float
    text: str
    css: str = ""
    anchor: str = "middle"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]
    css: str


@dataclass(slots=True)
class Chart:
    """One SVG chart: what the template draws, in drawing order."""

    id: str
    title: str
    description: str
    width: int = WIDTH
    height: int = HEIGHT
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css, name)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _y_axis(chart: Chart, y_max: float, ticks: Sequence[float], labels: Sequence[str]) -> None:
    plot_h = chart.height - TOP - BOTTOM
    for tick, label in zip(ticks, labels, strict=True):
        y = TOP + plot_h - plot_h * tick / y_max
        chart.lines.append(Line(LEFT, y, chart.width - RIGHT, y, "grid"))
        chart.texts.append(Text(LEFT - 6, y + 4, label, "tick", "end"))


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    y_max: float,
    ticks: Sequence[float],
    thresholds: Sequence[tuple[float, str]] = (),
    markers: Sequence[str] = (),
) -> Chart:
    """Grouped bars, one group per category; `thresholds` are dashed labelled lines,
    `markers[i]` a short text under category i (e.g. the sessions in that window)."""
    chart = Chart(chart_id, title, description)
    chart.legend = [(s.css, s.name) for s in series]
    _y_axis(chart, y_max, ticks, [_fmt(t) for t in ticks])
    plot_w = chart.width - LEFT - RIGHT
    plot_h = chart.height - TOP - BOTTOM
    groups = max(len(categories), 1)
    group_w = plot_w / groups
    bar_w = group_w * 0.8 / max(len(series), 1)
    for index, category in enumerate(categories):
        x0 = LEFT + index * group_w + group_w * 0.1
        for number, one in enumerate(series):
            value = one.values[index]
            if value is None:
                continue
            height = plot_h * min(value, y_max) / y_max
            chart.rects.append(
                Rect(
                    round(x0 + number * bar_w, 2),
                    round(TOP + plot_h - height, 2),
                    round(bar_w * 0.92, 2),
                    round(height, 2),
                    one.css,
                    f"{one.name}, {category}: {_fmt(value)}",
                )
            )
        centre = round(LEFT + (index + 0.5) * group_w, 2)
        chart.texts.append(Text(centre, TOP + plot_h + 16, category, "tick"))
        if index < len(markers) and markers[index]:
            chart.texts.append(Text(centre, TOP + plot_h + 32, markers[index], "marker"))
    for value, label in thresholds:
        y = round(TOP + plot_h - plot_h * value / y_max, 2)
        chart.lines.append(Line(LEFT, y, chart.width - RIGHT, y, "threshold"))
        chart.texts.append(Text(chart.width - RIGHT - 4, y - 4, label, "threshold-label", "end"))
    chart.lines.append(Line(LEFT, TOP + plot_h, chart.width - RIGHT, TOP + plot_h, "axis"))
    return chart


def severity_chart(
    chart_id: str,
    title: str,
    description: str,
    days: Sequence[tuple[date, int]],
    sessions: Sequence[date],
    levels: Sequence[str],
    span: tuple[date, date] | None = None,
) -> Chart:
    """One thin bar per headache day, its height the day's peak pain (0..len(levels)-1), over
    the calendar `span` (default: the first to the last of `days`); a dashed line at each
    session in it."""
    chart = Chart(chart_id, title, description)
    top_level = len(levels) - 1
    _y_axis(chart, top_level, range(len(levels)), levels)
    plot_w = chart.width - LEFT - RIGHT
    plot_h = chart.height - TOP - BOTTOM
    if span is None and not days:
        return chart
    first, last = span or (min(d for d, _ in days), max(d for d, _ in days))
    day_w = plot_w / max((last - first).days + 1, 1)

    def x_of(day: date) -> float:
        return round(LEFT + (day - first).days * day_w, 2)

    for day, level in days:
        height = plot_h * level / top_level
        chart.rects.append(
            Rect(
                x_of(day),
                round(TOP + plot_h - height, 2),
                round(max(day_w * 0.8, 0.6), 2),
                round(height, 2),
                f"level-{level}",
                f"{day.isoformat()}: {levels[level]}",
            )
        )
    for day in sessions:
        if first <= day <= last:
            x = x_of(day)
            chart.lines.append(Line(x, TOP, x, TOP + plot_h, "session"))
    chart.texts.append(Text(LEFT, TOP + plot_h + 16, first.isoformat(), "tick", "start"))
    chart.texts.append(
        Text(chart.width - RIGHT, TOP + plot_h + 16, last.isoformat(), "tick", "end")
    )
    chart.lines.append(Line(LEFT, TOP + plot_h, chart.width - RIGHT, TOP + plot_h, "axis"))
    chart.legend = [("level-3", "headache day, bar height = peak pain"), ("session", "session")]
    return chart
