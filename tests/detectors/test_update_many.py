"""The batch path (`DetectorSuite.update_many`, the detectors' `update_many`) says exactly what
`update` says one record at a time: the same findings, in the same order, for every fault,
every batch size, and whatever junk a parser hands over."""

import json
import math
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streams import FAULTS, SEED_NAN_WARNING, stream

from distill_doctor.detectors import DETECTORS, DetectorSuite, shape_runs
from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.columns import ALL_AT_ONCE, run_columns
from distill_doctor.detectors.grad_explosion import GradExplosion
from distill_doctor.detectors.loss_spike import LossSpike
from distill_doctor.detectors.rolling import RollingWindow

FACTS = RunFacts(planned_steps=1500, vocab_size=32000)


def one_by_one(records, facts=None) -> list[dict]:
    suite = DetectorSuite(facts)
    found = [f for record in records for f in suite.update(record)] + suite.finish()
    return [f.to_dict() for f in found]


def in_batches(records, size: int, facts=None) -> list[dict]:
    suite = DetectorSuite(facts)
    found = []
    for start in range(0, len(records), size):
        batch = records[start : start + size]
        hits = suite.update_many(batch, shape_runs([tuple(r) for r in batch]))
        assert [i for i, _ in hits] == sorted(i for i, _ in hits)  # in record order
        assert all(0 <= i < len(batch) for i, _ in hits)
        found.extend(f for _, f in hits)
    return [f.to_dict() for f in found + suite.finish()]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_gives_the_same_findings_in_batches(fault):
    records = stream(1500, faults={fault: 700}, seed=3)
    expected = one_by_one(records, FACTS)
    assert expected, "the fault should be found"
    for size in (1, 7, 1024):
        assert in_batches(records, size, FACTS) == expected


def test_a_healthy_run_with_the_seeds_symptoms_and_sparse_logging():
    records = stream(3000, log_every=10, eval_every=250, seed=5)
    records[120] = {**records[120], "warning": SEED_NAN_WARNING}
    records[150] = {**records[150], "loss": 0.0, "grad_norm": float("nan")}
    records[180] = {**records[180], "grad_norm": "inf", "loss": "2.5"}
    for facts in (None, FACTS):
        expected = one_by_one(records, facts)
        assert in_batches(records, 256, facts) == expected


def test_records_a_detector_does_not_watch_keep_their_places():
    """Batches mixing shapes: eval records between train records, rank records, junk."""
    records = stream(600, eval_every=7, seed=1)
    for i in range(0, 600, 13):
        records[i] = {"step": records[i]["step"], "nonfinite_ranks": "1", "world_size": 4}
    expected = one_by_one(records)
    assert in_batches(records, 100) == expected


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(-1e12, 1e12),  # not 1e300: a step that large overflows loss-flat's fit either way
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.sampled_from(["nan", "inf", "0.5", "x", "non-finite value (nan)"]),
)
KEYS = ["step", "lr", "loss", "loss_ce", "grad_norm", "eval_loss", "ppl", "vocab_size", "warning"]
PLAIN = st.fixed_dictionaries(
    {
        "step": st.integers(0, 10**6),
        "loss": st.floats(0.01, 20),
        "lr": st.floats(0, 1e-3),
        "grad_norm": st.floats(0, 100),
    }
)
RECORDS = st.lists(
    st.one_of(PLAIN, PLAIN, PLAIN, st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(records=RECORDS, size=st.sampled_from([1, 3, 50, 1024]))
def test_any_stream_gives_the_same_findings_in_batches(records, size):
    expected = json.dumps(one_by_one(records, FACTS), default=str)
    assert json.dumps(in_batches(records, size, FACTS), default=str) == expected


def test_the_detectors_with_a_batch_path():
    """The hot detectors of a postmortem take their records in one call."""
    batched = {cls.DOC.id for cls in DETECTORS if hasattr(cls, "update_many")}
    assert {"loss-spike", "loss-divergence", "grad-explosion", "nonfinite-loss"} <= batched


def state(value):
    """A detector's whole state, comparable: windows, fits, streaks and episodes included."""
    if isinstance(value, RollingWindow):
        return state([list(value.order), list(value.ordered)])
    if isinstance(value, (list, tuple, deque)):
        return [state(v) for v in value]
    if isinstance(value, dict):
        return {k: state(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: state(v) for k, v in vars(value).items()}
    return repr(value)  # floats by repr: -0.0 and 0.0 differ, NaN equals NaN


@pytest.mark.parametrize(
    "faults", [{}, {"grad_explosion": 2500}, {"loss_spike": 2000}, {"loss_divergence": 2500}]
)
def test_the_detectors_end_in_the_same_state(faults):
    """Not only the findings: every window, fit and running level, record for record."""
    records = stream(4000, faults=faults, seed=7)
    single, batched = DetectorSuite(FACTS), DetectorSuite(FACTS)
    for record in records:
        single.update(record)
    for start in range(0, len(records), 1024):
        batch = records[start : start + 1024]
        batched.update_many(batch, shape_runs([tuple(r) for r in batch]))
    for one, other in zip(single.detectors, batched.detectors, strict=True):
        assert state(other) == state(one), one.DOC.id


def test_a_rising_gradient_norm_keeps_the_same_running_level():
    """A slowly rising norm moves grad-explosion's normal level (a median every 8th record)
    inside runs decided at once: the level must be taken at the same records."""
    records = [{"step": s, "loss": 2.0, "grad_norm": 1 + s / 500} for s in range(1, 5000)]
    single, batched = GradExplosion(), GradExplosion()
    for record in records:
        single.update(record)
    for start in range(0, len(records), 1000):
        batch = records[start : start + 1000]
        batched.update_many(batch, shape_runs([tuple(r) for r in batch]))
    assert batched.normal_level > 5  # it did rise
    assert state(batched) == state(single)


def train_log(steps: int, noise: float, seed: int, scale: float = 1.0) -> list[dict]:
    """HF-like train records (loss, LR, norm, epoch) with an eval record every 500 steps: a
    power-law loss with multiplicative noise `noise`, a few spikes and dips, so that the
    block paths both pass blocks at once and fall back to value-by-value judging."""
    rng = random.Random(seed)
    records: list[dict] = []
    for step in range(1, steps + 1):
        loss = scale * (1.5 + 8 / math.sqrt(1 + step / 200)) * math.exp(rng.gauss(0, noise))
        grad = (0.5 + 3 / (1 + step / 500)) * math.exp(rng.gauss(0, 4 * noise))
        if rng.random() < 0.004:
            loss *= rng.choice([1.15, 1.25, 3.0, 0.5])
        if rng.random() < 0.002:
            grad *= rng.choice([8.0, 30.0])
        lr = 5e-5 * min(1.0, step / 100) * (steps - step + 1) / steps
        records.append({"loss": loss, "lr": lr, "grad_norm": grad, "epoch": step / 1000})
        records[-1]["step"] = step
        if step % 500 == 0:
            records.append({"eval_loss": loss * 1.05, "epoch": step / 1000, "step": step})
    return records


@pytest.mark.parametrize("noise", [0.005, 0.05, 0.2])
def test_block_decisions_keep_every_state_after_every_batch(noise):
    """loss-spike and loss-divergence pass blocks of a run at once when bounds on their
    windows' medians say nothing can happen, grad-explosion skips the medians under its
    normal level: the state must still match `update`'s at every batch boundary."""
    records = train_log(6000, noise, seed=int(noise * 1000))
    single, batched = DetectorSuite(FACTS), DetectorSuite(FACTS)
    found_single, found_batched = [], []
    for start in range(0, len(records), 700):
        batch = records[start : start + 700]
        found_single.extend(f.to_dict() for r in batch for f in single.update(r))
        hits = batched.update_many(batch, shape_runs([tuple(r) for r in batch]))
        found_batched.extend(f.to_dict() for _, f in hits)
        for one, other in zip(single.detectors, batched.detectors, strict=True):
            assert state(other) == state(one), (one.DOC.id, start)
    assert found_batched == found_single


def test_the_block_paths_are_taken_on_a_quiet_log(monkeypatch):
    """On a quiet log a loss-spike block is judged value by value only when its highest loss
    comes near the bar: most values never reach `_inline`."""
    inlined = []
    judge = LossSpike._inline

    def counting(self, records, start, end, losses, first, stop):
        inlined.append(stop - first)
        return judge(self, records, start, end, losses, first, stop)

    monkeypatch.setattr(LossSpike, "_inline", counting)
    records = train_log(20000, 0.02, seed=4)
    detector = LossSpike()
    for start in range(0, len(records), 1024):
        batch = records[start : start + 1024]
        detector.update_many(batch, shape_runs([tuple(r) for r in batch]))
    assert sum(inlined) < len(records) // 10


@pytest.mark.parametrize("scale", [1e-305, 1e-320, -1.0])
def test_tiny_and_negative_losses_take_the_exact_path(scale):
    """Halving a subnormal float is not exact, and a negative loss has no spike bar below it:
    the block bounds must not decide those runs."""
    records = train_log(3000, 0.05, seed=9, scale=scale)
    expected = one_by_one(records, FACTS)
    assert in_batches(records, 1024, FACTS) == expected


def test_run_columns_read_each_key_once_and_state_facts():
    records = [{"step": 1, "loss": 2.0, "lr": 0.1}, {"step": 2, "loss": 0.0, "lr": 0.2}]
    records.append({"step": 3, "loss": float("nan"), "lr": 0.3})
    wide = [{f"k{i}": float(i) for i in range(ALL_AT_ONCE + 1)} for _ in range(3)]
    (narrow,) = run_columns(records, [(0, 3, tuple(records[0]))])
    (spread,) = run_columns(wide, [(0, 3, tuple(wide[0]))])
    assert narrow["loss"][:2] == (2.0, 0.0) and narrow.get("missing") is None
    assert narrow.ints("step") and not narrow.plain("loss") and narrow.plain("lr")
    assert not narrow.nonzero_floats("loss")  # a clamped 0.0
    assert run_columns(records, [(0, 1, tuple(records[0]))])[0].nonzero_floats("loss")
    assert spread["k3"] == (3.0, 3.0, 3.0) and spread.plain("k0")
    given = run_columns(records, [(0, 3, tuple(records[0]))])
    assert run_columns(records, [], given) is given  # the caller's columns are used as given
