"""Bounded curves for the plot: each series keeps at most ~2 x MAX_BUCKETS points however long
the run, as the min and max of each step bucket (so spikes survive), while streaming.
Non-finite values are kept apart (their steps, capped) so the plot can mark them."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distill_doctor import records as R
from distill_doctor.detectors.columns import RunColumns, with_columns

if TYPE_CHECKING:
    from distill_doctor.detectors import ShapeRun

MAX_BUCKETS = 1000
MAX_NONFINITE = 200
PLOTTED = (R.LOSS, R.EVAL_LOSS, R.LR, R.GRAD_NORM)


@dataclass
class Series:
    """One metric's curve: buckets of `width` steps, each (min point, max point)."""

    width: int = 1
    buckets: dict[int, tuple[tuple[int, float], tuple[int, float]]] = field(default_factory=dict)
    nonfinite_steps: list[int] = field(default_factory=list)

    def add(self, step: int, value: float) -> None:
        self.extend(((step, value),))

    def extend(self, points: Iterable[tuple[int, float]]) -> None:
        """Points in step order, in one loop: O(1) each, and no call per point."""
        buckets, width, isfinite = self.buckets, self.width, math.isfinite
        for step, value in points:
            if not isfinite(value):
                if len(self.nonfinite_steps) < MAX_NONFINITE:
                    self.nonfinite_steps.append(step)
                continue
            index = step // width
            pair = buckets.get(index)
            if pair is None:
                buckets[index] = ((step, value), (step, value))
                if len(buckets) > MAX_BUCKETS:
                    self._coarsen()
                    buckets, width = self.buckets, self.width
            elif value < pair[0][1]:  # strict: on a tie the first point stays, as min() keeps it
                buckets[index] = ((step, value), pair[1])
            elif value > pair[1][1]:
                buckets[index] = (pair[0], (step, value))

    def extend_sorted(self, steps: Sequence[int], values: Sequence[float]) -> None:
        """`extend` for points with int steps in order and finite values, the usual run of a
        log: a bucket's points (after the one that opens it) are one block, whose lowest and
        highest are found by min()/max() in C, and placed by index() only when they move the
        bucket. The same buckets as `extend`: a point only moves a bucket's min (max) when
        strictly below (above) it, so the block's first extreme is what point-by-point would
        keep."""
        i, n = 0, len(steps)
        while i < n:
            index = steps[i] // self.width
            pair = self.buckets.get(index)
            first = i
            if pair is None:
                self.extend(((steps[i], values[i]),))  # opens the bucket, and may coarsen
                index = steps[i] // self.width
                pair, first = self.buckets[index], i + 1
            end = bisect_left(steps, (index + 1) * self.width, first)
            if end > first:
                block = values[first:end]
                low, high = min(block), max(block)
                if low < pair[0][1]:
                    pair = ((steps[values.index(low, first, end)], low), pair[1])
                if high > pair[1][1]:
                    pair = (pair[0], (steps[values.index(high, first, end)], high))
                self.buckets[index] = pair
            i = end

    def _coarsen(self) -> None:
        self.width *= 2
        merged: dict[int, tuple[tuple[int, float], tuple[int, float]]] = {}
        for index, (low, high) in self.buckets.items():
            old = merged.get(index // 2)
            if old is not None:
                low, high = min(old[0], low, key=_value), max(old[1], high, key=_value)
            merged[index // 2] = (low, high)
        self.buckets = merged

    def points(self) -> list[tuple[int, float]]:
        """The kept points in step order (a bucket's min and max, once each)."""
        found = {point for pair in self.buckets.values() for point in pair}
        return sorted(found)


def _value(point: tuple[int, float]) -> float:
    return point[1]


@dataclass
class Curves:
    """The plotted series of a run, fed one record at a time."""

    series: dict[str, Series] = field(default_factory=lambda: {k: Series() for k in PLOTTED})

    def add(self, record: dict[str, object]) -> None:
        self.add_many([record], [(0, 1, tuple(record))])

    def add_many(
        self,
        records: list[dict[str, object]],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> None:
        """A batch of records (`runs`: its `shape_runs`; `columns`: their `RunColumns`, when
        the caller has them): each series takes its points of a run at once, and a run
        without a plotted key costs nothing."""
        for (start, end, shape), values in with_columns(records, runs, columns):
            plotted = [(key, series) for key, series in self.series.items() if key in shape]
            if not plotted:
                continue
            steps = values.get(R.STEP)
            in_order = steps is not None and values.ints(R.STEP) and list(steps) == sorted(steps)
            for key, series in plotted:
                if in_order and values.plain(key):
                    series.extend_sorted(steps, values[key])
                else:
                    series.extend(_points(records[start:end], key))


def _points(records: list[dict[str, object]], key: str) -> Iterator[tuple[int, float]]:
    for record in records:
        step = record.get(R.STEP)
        if not isinstance(step, int):
            continue
        value = record[key]
        if type(value) is float:  # the usual case first; bools are not numbers here
            yield step, value
        elif type(value) is int:
            yield step, float(value)
