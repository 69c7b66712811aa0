import pytest
from streams import run_one, stream

from distill_doctor.detectors.loss_flat import MAX_PROGRESS, LossFlat


def test_plateau_fires_once_near_its_start():
    findings = run_one(LossFlat, stream(2000, faults={"loss_flat": 600}))
    [finding] = findings
    assert 500 <= finding.step <= 700
    evidence = finding.evidence
    assert evidence["last_step"] > evidence["first_step"] == finding.step
    assert abs(evidence["progress"]) < MAX_PROGRESS
    assert abs(evidence["start"] - evidence["end"]) / evidence["start"] < 0.02
    assert evidence["window_steps"] == evidence["last_step"] - evidence["first_step"]


def test_sparse_logging_still_judged():
    [finding] = run_one(LossFlat, stream(5000, log_every=10, faults={"loss_flat": 1000}))
    assert 800 <= finding.step <= 1300


def test_constant_loss_from_the_start():
    records = [{"step": 50 * i, "loss": 1.39 + 0.01 * (i % 3)} for i in range(1, 60)]
    [finding] = run_one(LossFlat, records)
    assert finding.step == 50 and abs(finding.evidence["slope_per_step"]) < 1e-5


def test_one_dip_in_a_plateau_is_the_same_plateau():
    records = [{"step": s, "loss": 21.5 + 0.1 * (s % 2)} for s in range(1, 3000)]
    records[999]["loss"] = 15.0
    assert [f.step for f in run_one(LossFlat, records)] == [1]


def test_second_plateau_after_real_progress_is_a_new_finding():
    levels = [8.0] * 1000 + [8.0 - 0.004 * i for i in range(1000)] + [4.0] * 3000
    records = [{"step": s + 1, "loss": v + 0.01 * (s % 3)} for s, v in enumerate(levels)]
    findings = run_one(LossFlat, records)
    assert [f.step for f in findings][0] == 1 and len(findings) == 2
    assert 1900 <= findings[1].step <= 2300 and findings[1].evidence["end"] < 4.1


def test_healthy_short_and_missing_are_silent():
    assert run_one(LossFlat, stream(3000)) == []
    falling = [{"step": s, "loss": 2.0 - 0.05 * s} for s in range(19)]
    assert run_one(LossFlat, falling) == []
    assert run_one(LossFlat, [{"step": s, "loss": 2.0} for s in range(4)]) == []  # too few
    assert run_one(LossFlat, stream(800, faults={"loss_flat": 100}, drop={"loss"})) == []


def test_short_log_that_never_improves_is_flat():
    # Issue 8: a log of a handful of points is judged whole (it used to be too short).
    records = [{"step": 10 * s, "loss": 2.44 + 0.03 * (s % 3)} for s in range(1, 9)]
    [finding] = run_one(LossFlat, records)
    assert finding.step == 10 and finding.evidence["last_step"] == 80
    assert (
        finding.evidence["start"] == pytest.approx(2.47) and 2.44 <= finding.evidence["end"] <= 2.5
    )


def test_short_log_during_warmup_is_not_judged():
    records = [{"step": s, "loss": 2.0, "lr": 1e-6 * s} for s in range(1, 9)]
    assert run_one(LossFlat, records) == []


def test_first_steps_of_a_long_run_and_its_warmup_are_not_a_plateau():
    # Steps 1-150 of a long run decaying in absolute steps: no window spans enough training.
    slow = [{"step": s, "loss": 2.0 + 8.0 / (1 + s / 1000)} for s in range(1, 151)]
    assert run_one(LossFlat, slow) == []
    # A 100-step warmup at a tiny LR leaves the loss flat, then it falls.
    warm = [
        {"step": s, "lr": 1e-4 * min(1.0, s / 100), "loss": 9.0 if s <= 100 else 9.0 * 100 / s}
        for s in range(1, 400)
    ]
    assert run_one(LossFlat, warm) == []
