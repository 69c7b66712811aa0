"""Runs broken from their first line, and short logs (4-10 points): checks that need no
healthy baseline (issue 8), and the healthy short logs they must leave alone."""

import math

from streams import run_one

from distill_doctor.detectors import run_detectors
from distill_doctor.detectors.grad_explosion import GradExplosion
from distill_doctor.detectors.loss_divergence import LossDivergence
from distill_doctor.detectors.loss_spike import LossSpike
from distill_doctor.findings import Severity


def ids(findings) -> set[str]:
    return {f.id for f in findings if f.severity is not Severity.INFO}


def test_grad_norm_growing_geometrically_toward_1e14_with_a_rising_loss():
    records = [
        {"step": 10 * i, "grad_norm": 3.0 * 100.0**i, "loss": 2.0 + 0.4 * i, "lr": 1e-4}
        for i in range(1, 8)
    ]
    findings = run_detectors(records)
    assert ids(findings) == {"grad-explosion", "loss-divergence"}
    [growth] = [f for f in findings if f.id == "grad-explosion"]
    assert growth.step == 40 and "geometrically" in growth.message
    assert growth.evidence["growth_per_record"] > 10
    [rise] = [f for f in findings if f.id == "loss-divergence"]
    assert rise.step == 10 and rise.evidence["level"] > rise.evidence["start_level"]


def test_grad_norm_in_the_millions_from_the_first_line_with_a_loss_that_never_moves():
    records = [
        {"step": s, "grad_norm": 2.3e6 * (1 + 0.1 * (s % 3)), "loss": 6.91 + 0.01 * (s % 2)}
        for s in range(1, 7)
    ]
    assert ids(run_detectors(records)) == {"grad-explosion", "loss-flat"}
    [absurd] = run_one(GradExplosion, records)
    assert absurd.step == 3 and absurd.evidence["level"] >= 1e6


def test_loss_in_the_hundreds_of_millions_is_orders_of_magnitude_off():
    records = [{"step": s, "loss": 3.1e8 * (1 - 0.01 * s), "grad_norm": 40.0} for s in range(5)]
    [finding] = run_one(LossDivergence, records)
    assert finding.step == 0 and finding.evidence["start_level"] > 1e8
    assert "orders of magnitude" in finding.message


def test_healthy_short_and_large_but_falling_logs_are_silent():
    # A KD loss summed over tokens (thousands) that falls, a 5-point epoch log, a 4-point log.
    kd_sum = [{"step": 100 * s, "loss": 2242.0 / s, "grad_norm": 30.0 / s} for s in range(1, 9)]
    epochs = [{"step": s, "loss": v} for s, v in enumerate([2.28, 1.61, 1.40, 1.31, 1.25])]
    four = [{"step": s, "loss": 1.0 - 0.1 * s, "grad_norm": 1.0} for s in range(4)]
    for records in (kd_sum, epochs, four):
        assert ids(run_detectors(records)) == set()


def test_a_rising_loss_during_warmup_is_not_divergence():
    records = [{"step": s, "loss": 2.0 + 0.1 * s, "lr": 1e-5 * s} for s in range(1, 9)]
    assert run_one(LossDivergence, records) == []


def test_thresholds_stay_sane_when_the_loss_is_1e_4():
    # A memorised run: the loss sits near 1e-4 with per-batch noise; it started near 2.
    records = [{"step": s, "loss": 2.0 / s} for s in range(1, 50)]
    records += [
        {"step": s, "loss": 1e-4 * (1 + 0.5 * math.sin(s) ** 2) * (8 if s % 97 == 0 else 1)}
        for s in range(50, 3000)
    ]
    assert run_one(LossSpike, records) == []


def test_repeated_spikes_are_one_episode_with_its_count_and_worst_value():
    records = [{"step": s, "loss": 2.0 + 0.01 * (s % 5)} for s in range(1, 400)]
    for step, value in ((200, 6.0), (210, 9.0), (230, 7.0)):
        records[step - 1]["loss"] = value
    [finding] = run_one(LossSpike, records)
    assert finding.step == 200
    assert finding.evidence["count"] == 3 and finding.evidence["last_step"] == 230
    assert finding.evidence["worst"] == 9.0 and "3 times up to step 230" in finding.message
