from real_run_shapes import overfitting_run
from streams import run_one, stream

from distill_doctor.detectors import run_detectors
from distill_doctor.detectors.overfitting import MIN_EVALS, Overfitting
from distill_doctor.findings import Severity


def evals_and_train(eval_values, train_values, every=100):
    records = []
    for i, (ev, tr) in enumerate(zip(eval_values, train_values, strict=True)):
        step = every * (i + 1)
        records += [{"step": step - 1, "loss": tr}, {"step": step, "eval_loss": ev}]
    return records


def test_the_overfitting_run_gives_one_finding_at_the_best_checkpoint():
    # Issue 8: this shape gave 59 findings (eval-regression, grad-explosion, loss-spike).
    for seed in range(3):
        findings = run_detectors(overfitting_run(seed=seed))
        serious = [f for f in findings if f.severity is not Severity.INFO]
        assert [f.id for f in serious] == ["overfitting"], [f.message for f in serious]
        [finding] = serious
        assert 900 <= finding.step <= 1100 and finding.evidence["best_step"] == finding.step
        assert 0.7 < finding.evidence["rise"] < 0.9  # restated at the end: the whole rise
        assert finding.evidence["train_loss"] < finding.evidence["train_loss_at_best"] / 10
        assert f"Keep the checkpoint of step {finding.step}" in finding.message


def test_rise_with_a_rising_train_loss_is_not_overfitting():
    rising = evals_and_train([3.0, 2.5, 2.0, 2.3, 2.6, 2.9], [3.0, 2.6, 2.2, 2.4, 2.7, 3.0])
    assert run_one(Overfitting, rising) == []


def test_needs_five_evaluations_and_a_trend():
    few = evals_and_train([2.0, 1.9, 2.2, 2.6][: MIN_EVALS - 1], [2.0, 1.5, 1.2, 1.0])
    assert run_one(Overfitting, few) == []
    one_bad_eval = evals_and_train([2.0, 1.9, 1.85, 1.8, 2.3, 1.78], [3, 2.5, 2, 1.5, 1.2, 1.0])
    assert run_one(Overfitting, one_bad_eval) == []


def test_noisy_evaluations_of_a_healthy_run_are_not_overfitting():
    # A small eval set: +-5% per evaluation around a loss that falls with the train loss.
    import random

    rng = random.Random(4)
    values = [2.0 / (1 + i / 20) * (1 + rng.gauss(0, 0.05)) for i in range(150)]
    train = [1.9 / (1 + i / 20) for i in range(150)]
    assert run_one(Overfitting, evals_and_train(values, train)) == []


def test_a_new_best_ends_the_episode_and_a_later_one_is_new():
    values = [3.0, 2.0, 1.5, 1.5, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 1.0, 0.9, 0.9, 0.9]
    values += [1.0, 1.1, 1.2, 1.3]
    train = [3.0 - 0.15 * i for i in range(len(values))]
    findings = run_one(Overfitting, evals_and_train(values, train))
    assert [f.step for f in findings] == [300, 1200]
    assert findings[0].evidence["eval_loss"] == 2.0  # its last statement, before the new best


def test_healthy_and_missing_are_silent():
    assert run_one(Overfitting, stream(3000, eval_every=100)) == []
    assert run_one(Overfitting, stream(3000, drop={"eval_loss"})) == []
