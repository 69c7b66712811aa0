"""Bounded curves for the plot: each series keeps at most ~2 x MAX_BUCKETS points however long
the run, as the min and max of each step bucket (so spikes survive), while streaming.
Non-finite values are kept apart (their steps, capped) so the plot can mark them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from distill_doctor import records as R

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
        if not math.isfinite(value):
            if len(self.nonfinite_steps) < MAX_NONFINITE:
                self.nonfinite_steps.append(step)
            return
        index = step // self.width
        pair = self.buckets.get(index)
        if pair is None:
            self.buckets[index] = ((step, value), (step, value))
            if len(self.buckets) > MAX_BUCKETS:
                self._coarsen()
        elif value < pair[0][1]:  # strict: on a tie the first point stays, as min() keeps it
            self.buckets[index] = ((step, value), pair[1])
        elif value > pair[1][1]:
            self.buckets[index] = (pair[0], (step, value))

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
        step = record.get(R.STEP)
        if not isinstance(step, int):
            return
        for key, series in self.series.items():
            value = record.get(key)
            if type(value) is float:  # the usual case first; bools are not numbers here
                series.add(step, value)
            elif type(value) is int:
                series.add(step, float(value))
