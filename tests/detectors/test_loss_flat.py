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


def test_healthy_short_and_missing_are_silent():
    assert run_one(LossFlat, stream(3000)) == []
    assert run_one(LossFlat, [{"step": s, "loss": 2.0} for s in range(19)]) == []
    assert run_one(LossFlat, stream(800, faults={"loss_flat": 100}, drop={"loss"})) == []
