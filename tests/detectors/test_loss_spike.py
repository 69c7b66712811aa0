from streams import run_one, stream

from distill_doctor.detectors.loss_spike import SPIKE_SIGMAS, LossSpike


def test_spike_at_its_step_with_evidence():
    [finding] = run_one(LossSpike, stream(1000, faults={"loss_spike": 500}))
    assert finding.step == 500
    evidence = finding.evidence
    assert evidence["value"] > 2.5 * evidence["median"]
    assert evidence["z"] > SPIKE_SIGMAS and evidence["window"] == 50


def test_kd_loss_starting_high_is_not_a_spike():
    # Megatron's 10x-early-max rule would never fire here; the falling start must not either.
    records = [{"step": s, "loss": 25.0 / (1 + s / 10)} for s in range(300)]
    assert run_one(LossSpike, records) == []


def test_jitter_on_a_constant_loss_is_not_a_spike():
    records = [{"step": s, "loss": 1.386 + (0.03 if s % 7 == 0 else 0.0)} for s in range(300)]
    assert run_one(LossSpike, records) == []


def test_healthy_and_missing_are_silent():
    assert run_one(LossSpike, stream(3000, seed=3)) == []
    assert run_one(LossSpike, stream(500, faults={"loss_spike": 200}, drop={"loss"})) == []
