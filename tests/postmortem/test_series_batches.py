"""The curves' batch paths keep exactly the points that adding them one by one keeps."""

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from distill_doctor.detectors import shape_runs
from distill_doctor.postmortem.series import MAX_BUCKETS, Curves, Series


def one_by_one(points) -> Series:
    series = Series()
    for step, value in points:
        series.add(step, value)
    return series


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 50), min_size=1, max_size=400),
    values=st.lists(st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.5, -1.0]), min_size=400, max_size=400),
    start=st.integers(-1000, 10**6),
)
def test_a_sorted_block_keeps_the_same_points_ties_included(gaps, values, start):
    steps, step = [], start
    for gap in gaps:
        step += gap
        steps.append(step)
    points = list(zip(steps, values, strict=False))
    batch = Series()
    batch.extend_sorted([s for s, _ in points], [v for _, v in points])
    single = one_by_one(points)
    assert batch.buckets == single.buckets and batch.width == single.width


def test_a_long_run_coarsens_the_same_way():
    rng = random.Random(0)
    steps = list(range(0, 300_000, 3))
    values = [rng.choice([1.0, 2.0, rng.random()]) for _ in steps]
    batch = Series()
    for start in range(0, len(steps), 1024):
        batch.extend_sorted(steps[start : start + 1024], values[start : start + 1024])
    single = one_by_one(zip(steps, values, strict=True))
    assert batch.width > 1 and len(batch.buckets) <= MAX_BUCKETS
    assert batch.points() == single.points() and batch.width == single.width


def test_curves_in_batches_match_record_by_record_with_junk_and_gaps():
    rng = random.Random(1)
    records = []
    for step in range(5000):
        record = {"step": step, "loss": rng.random(), "grad_norm": rng.random() * 3}
        if step % 97 == 0:
            record["loss"] = rng.choice([math.nan, math.inf, 2, True, "x"])
        if step % 250 == 0:
            record = {"step": step, "eval_loss": rng.random()}
        if step % 331 == 0:
            record["step"] = rng.choice([step - 500, True, None, 7.5])
        records.append(record)
    single, batch = Curves(), Curves()
    for record in records:
        single.add(record)
    for start in range(0, len(records), 512):
        chunk = records[start : start + 512]
        batch.add_many(chunk, shape_runs([tuple(r) for r in chunk]))
    for key, series in single.series.items():
        other = batch.series[key]
        assert other.points() == series.points(), key
        assert other.nonfinite_steps == series.nonfinite_steps, key
    assert single.series["loss"].nonfinite_steps  # the junk reached the curves
