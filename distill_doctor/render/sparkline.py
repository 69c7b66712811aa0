"""One-line curves for the text report: a sparkline per series, with the findings marked on a
row beneath, so a person sees the shape of the run without `--plot`.

Each column is a slice of the run's steps and shows the highest value in it (so a spike is not
averaged away); a series spanning more than two decades is drawn on a log scale; `x` marks a
column where the series was NaN or Inf. A column without a point between two that have one
holds the value before it (a log every 500 steps is a step curve, not a row of gaps).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from distill_doctor.findings import Finding, Severity
from distill_doctor.postmortem.series import MAX_NONFINITE, Series

BARS = "▁▂▃▄▅▆▇█"
NONFINITE = "x"
MARKS = {Severity.ERROR: "!", Severity.WARNING: "^", Severity.INFO: "."}
LOG_SCALE_RATIO = 100.0  # max / min beyond which a linear scale flattens the interesting part


class Sparkline(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    name: str
    line: str
    summary: str  # first -> last value, and the log scale when used


def _span(curves: dict[str, Series]) -> tuple[int, int] | None:
    steps = [s for series in curves.values() for s, _ in series.points()]
    steps += [s for series in curves.values() for s in series.nonfinite_steps]
    return (min(steps), max(steps)) if steps else None


def _column(step: int, first: int, last: int, width: int) -> int:
    if last == first:
        return 0
    return min(width - 1, int((step - first) * width / (last - first + 1)))


def _level(value: float, low: float, high: float, log: bool) -> str:
    if log:
        value, low, high = math.log10(value), math.log10(low), math.log10(high)
    if high <= low:
        return BARS[len(BARS) // 2]
    index = int((value - low) / (high - low) * (len(BARS) - 1) + 0.5)
    return BARS[max(0, min(len(BARS) - 1, index))]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def sparkline(name: str, series: Series, first: int, last: int, width: int) -> Sparkline | None:
    points = series.points()
    if not points and not series.nonfinite_steps:
        return None
    columns: list[float | None] = [None] * width
    for step, value in points:
        col = _column(step, first, last, width)
        current = columns[col]
        columns[col] = value if current is None else max(current, value)
    values = [v for v in columns if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    log = low > 0 and high / low > LOG_SCALE_RATIO
    _hold(columns, _column(points[-1][0], first, last, width) if points else -1)
    cells = [" " if v is None else _level(v, low, high, log) for v in columns]
    for step in series.nonfinite_steps:
        cells[_column(step, first, last, width)] = NONFINITE
    return Sparkline(name, "".join(cells), _summary(points, low, high, log, series))


def _hold(columns: list[float | None], last_col: int) -> None:
    """Fill the gaps between points with the value before them, up to the last point."""
    held = None
    for col in range(last_col + 1):
        if columns[col] is None:
            columns[col] = held
        held = columns[col]


def _summary(
    points: list[tuple[int, float]], low: float, high: float, log: bool, series: Series
) -> str:
    bad = len(series.nonfinite_steps)
    if not points:
        return f"never finite ({bad}{'+' * (bad >= MAX_NONFINITE)} NaN/Inf)"
    start, end = points[0][1], points[-1][1]
    extra = []
    if high > max(start, end) * 1.01:
        extra.append(f"max {_fmt(high)}")
    if low < min(start, end) * 0.99:
        extra.append(f"min {_fmt(low)}")
    if log:
        extra.append("log")
    if bad:
        extra.append(f"{bad}{'+' * (bad >= MAX_NONFINITE)} NaN/Inf")
    return f"{_fmt(start)} -> {_fmt(end)}" + (f" ({', '.join(extra)})" if extra else "")


def finding_marks(findings: list[Finding], first: int, last: int, width: int) -> str:
    """A row of marks at the columns of the findings' steps, the worst one per column."""
    cells: list[tuple[int, str]] = [(-1, " ")] * width
    for finding in findings:
        if finding.step is None or not first <= finding.step <= last:
            continue
        col = _column(finding.step, first, last, width)
        rank = finding.severity.rank
        if rank > cells[col][0]:
            cells[col] = (rank, MARKS[finding.severity])
    return "".join(mark for _, mark in cells).rstrip()


def sparklines(
    curves: dict[str, Series], findings: list[Finding], width: int = 40
) -> tuple[tuple[int, int], list[Sparkline], str] | None:
    """(first and last step, a sparkline per series with data, the findings' marks row)."""
    span = _span(curves)
    if span is None:
        return None
    first, last = span
    lines = [
        line
        for name, series in curves.items()
        if (line := sparkline(name, series, first, last, width)) is not None
    ]
    return span, lines, finding_marks(findings, first, last, width)
