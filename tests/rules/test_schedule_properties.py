"""Properties of the LR shape and of scheduler-steps-mismatch over many step counts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from distill_doctor.findings import Severity
from distill_doctor.rules import scheduler_steps_mismatch
from distill_doctor.rules.lr_schedule import lr_multiplier
from tests.rules.conftest import make_context

shapes = st.sampled_from(["linear", "cosine", "constant"])


@given(
    step=st.integers(0, 10_000),
    total=st.integers(1, 10_000),
    warmup=st.integers(0, 500),
    shape=shapes,
    floor=st.floats(0, 1),
)
def test_lr_multiplier_stays_between_zero_and_the_peak(step, total, warmup, shape, floor):
    value = lr_multiplier(step, total, warmup, shape, floor)
    assert 0.0 <= value <= 1.0 + 1e-12
    if step >= total > warmup and shape != "constant":
        assert abs(value - floor) < 1e-9  # past the end the LR sits at its floor


@given(samples=st.integers(1, 200_000), batch=st.integers(1, 64), told=st.integers(1, 100_000))
def test_direction_severity_and_shares_agree(samples, batch, told):
    data = {"train_samples": samples, "batch_size": batch, "num_training_steps": told}
    findings = scheduler_steps_mismatch.check(make_context(data))
    planned = -(-samples // batch)  # accumulation 1, one epoch
    if abs(told / planned - 1) <= 0.01:
        assert findings == []
        return
    [f] = findings
    if told < planned:
        assert f.severity is Severity.ERROR
        assert f.evidence["steps_at_lr_floor"] == planned - told
    else:
        # Linear, no warmup: the last step runs at (told - (planned - 1)) / told of the peak.
        expected = (told - planned + 1) / told
        # The evidence is rounded to 4 places: within half a unit of the last place.
        assert abs(f.evidence["final_lr_share_of_peak"] - expected) <= 5e-5 + 1e-12
        if abs(expected - 0.5) > 1e-9:  # the rule decides on the unrounded share
            never_decays = expected >= 0.5
            assert f.severity is (Severity.ERROR if never_decays else Severity.WARNING)
