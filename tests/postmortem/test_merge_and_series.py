"""The k-way merge by step and the plot's bounded, spike-keeping series."""

from __future__ import annotations

import math

from distill_doctor.postmortem.merge import merge_by_step
from distill_doctor.postmortem.series import MAX_BUCKETS, Series


def test_merge_interleaves_streams_by_step_lazily():
    pulled = []

    def stream(name, steps):
        for step in steps:
            pulled.append((name, step))
            yield {"step": step, "src": name}

    merged = merge_by_step([stream("a", [1, 4, 9]), stream("b", [2, 4, 5])])
    first = next(merged)
    assert first == {"step": 1, "src": "a"} and len(pulled) == 2  # one record per stream held
    rest = [(r["src"], r["step"]) for r in merged]
    assert rest == [("b", 2), ("a", 4), ("b", 4), ("b", 5), ("a", 9)]


def test_series_stays_bounded_and_keeps_the_spike():
    series = Series()
    for step in range(200_000):
        series.add(step, 100.0 if step == 123_457 else 1.0 + (step % 7) / 100)
    series.add(200_001, math.nan)
    points = series.points()
    assert len(points) <= 2 * MAX_BUCKETS
    assert (123_457, 100.0) in points
    assert points[0][0] == 0 and series.nonfinite_steps == [200_001]
