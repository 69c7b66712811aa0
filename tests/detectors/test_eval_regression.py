import pytest
from streams import run_one, stream

from distill_doctor.detectors.eval_regression import JUMP_FACTOR, EvalRegression


def evals(values, every=2983):
    return [{"step": every * (i + 1), "eval_loss": v} for i, v in enumerate(values)]


def test_the_lr20_rnn_eval_spike_is_named_at_its_step():
    # The word-language-model run at lr 20: valid loss by epoch, the spike at epoch 5.
    records = evals([39.70, 26.05, 17.68, 16.95, 30.37, 8.9, 8.4])
    [finding] = run_one(EvalRegression, records)
    assert finding.step == 5 * 2983
    assert finding.evidence["best_eval_loss"] == 16.95
    assert finding.evidence["best_step"] == 4 * 2983
    assert finding.evidence["ratio"] == pytest.approx(30.37 / 16.95, abs=1e-3)


def test_one_finding_per_episode_and_a_new_one_after_recovery():
    records = evals([10.0, 8.0, 6.0, 9.5, 9.8, 5.5, 9.0])  # 9.5 > 1.5 x 6; 9.0 > 1.5 x 5.5
    found = run_one(EvalRegression, records)
    assert [f.step for f in found] == [4 * 2983, 7 * 2983]


def test_overfitting_and_early_evals_are_silent():
    # A slow rise after the best is overfitting, not a regression.
    assert run_one(EvalRegression, evals([3.0, 2.5, 2.2, 2.3, 2.5, 2.7])) == []
    # The second eval of a fresh run has no settled best yet; the third does.
    assert run_one(EvalRegression, evals([1.0, 2.0])) == []
    assert len(run_one(EvalRegression, evals([1.0, 2.0, 1.9]))) == 1
    # At exactly the bar: not above it.
    assert run_one(EvalRegression, evals([4.0, 3.0, 2.0, 2.0 * JUMP_FACTOR])) == []


def test_healthy_stream_nan_and_missing_eval_are_silent():
    assert run_one(EvalRegression, stream(2000)) == []
    assert run_one(EvalRegression, evals([3.0, float("nan"), 2.0, float("inf"), 1.9])) == []
    assert run_one(EvalRegression, stream(500, drop={"eval_loss"})) == []
