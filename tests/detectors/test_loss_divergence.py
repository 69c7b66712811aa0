from streams import run_one, stream

from distill_doctor.detectors.loss_divergence import LossDivergence


def test_divergence_reports_where_the_rise_began():
    [finding] = run_one(LossDivergence, stream(1000, faults={"loss_divergence": 500}))
    assert 480 <= finding.step <= 520  # the trough before the rise
    evidence = finding.evidence
    assert evidence["level"] > 1.1 * evidence["start_level"]
    assert evidence["trough"] < evidence["start_level"] / 3
    assert evidence["step"] > evidence["trough_step"]


def test_high_but_falling_loss_is_not_divergence():
    records = [{"step": s, "loss": 30.0 - s * 0.01} for s in range(200)]
    assert run_one(LossDivergence, records) == []


def test_healthy_and_missing_are_silent():
    assert run_one(LossDivergence, stream(3000)) == []
    no_loss = stream(800, faults={"loss_divergence": 100}, drop={"loss"})
    assert run_one(LossDivergence, no_loss) == []
