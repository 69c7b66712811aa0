from streams import run_one, stream

from distill_doctor.detectors.grad_explosion import EXPLOSION_FACTOR, GradExplosion
from distill_doctor.detectors.grad_vanishing import GradVanishing


def test_explosion_at_its_step():
    [finding] = run_one(GradExplosion, stream(1000, faults={"grad_explosion": 400}))
    assert finding.step == 400
    assert finding.evidence["ratio"] > EXPLOSION_FACTOR
    assert finding.evidence["grad_norm"] == finding.evidence["ratio"] * finding.evidence["median"]


def test_falling_grad_norm_is_not_explosion():
    records = [{"step": s, "grad_norm": 17.3 / (1 + s / 20)} for s in range(900)]
    assert run_one(GradExplosion, records) == []


def test_vanishing_begins_at_first_zero():
    [finding] = run_one(GradVanishing, stream(1000, faults={"grad_vanishing": 400}))
    assert finding.step == 400
    assert finding.evidence["grad_norm"] == 0.0 and finding.evidence["running_level"] > 0.5


def test_tiny_relative_to_running_level():
    records = [{"step": s, "lr": 1e-4, "grad_norm": 2.0 if s < 60 else 1e-4} for s in range(100)]
    [finding] = run_one(GradVanishing, records)
    assert finding.step == 60


def test_vanishing_needs_several_records_and_positive_lr():
    blip = [{"step": s, "lr": 1e-4, "grad_norm": 0.0 if s == 50 else 1.0} for s in range(100)]
    assert run_one(GradVanishing, blip) == []
    no_lr = [{"step": s, "lr": 0.0, "grad_norm": 0.0} for s in range(100)]
    assert run_one(GradVanishing, no_lr) == []


def test_healthy_and_missing_are_silent():
    for cls in (GradExplosion, GradVanishing):
        assert run_one(cls, stream(3000, seed=2)) == []
        assert run_one(cls, stream(500, faults={"grad_explosion": 100}, drop={"grad_norm"})) == []


def test_one_norm_four_decades_above_the_last_is_absurd_without_a_baseline():
    # mmdetection #11708: two log lines, grad_norm 3.46 then 31,101,415.
    records = [{"step": 850, "grad_norm": 3.4572}, {"step": 900, "grad_norm": 31101415.6}]
    [finding] = run_one(GradExplosion, records)
    assert finding.step == 900 and finding.evidence["previous_grad_norm"] == 3.4572
    assert finding.evidence["ratio"] > 1e6


def test_a_big_but_gradual_or_sub_million_norm_is_not_an_absurd_jump():
    below_a_million = [{"step": 1, "grad_norm": 3.0}, {"step": 2, "grad_norm": 5e5}]
    assert run_one(GradExplosion, below_a_million) == []
    under_four_decades = [{"step": 1, "grad_norm": 200.0}, {"step": 2, "grad_norm": 1.5e6}]
    assert run_one(GradExplosion, under_four_decades) == []
