"""The diagnoses of ../shared/data/real-logs/SOURCES.md, from the whole detector suite."""

import pytest
from real_logs import hf_trainer_state, lightning_csv, wordlm_log

from distill_doctor.detectors import run_detectors
from distill_doctor.detectors.base import RunFacts
from distill_doctor.findings import Severity

SERIOUS = (Severity.WARNING, Severity.ERROR)


def serious_ids(findings) -> set[str]:
    return {f.id for f in findings if f.severity in SERIOUS}


def test_quality_never_learned_flat_loss_and_frozen_eval():
    records, max_steps = hf_trainer_state(
        "hf_trainer_state_flat_loss_chance_level_identical_eval.json"
    )
    findings = run_detectors(records, RunFacts(planned_steps=max_steps))
    assert serious_ids(findings) == {"loss-flat", "eval-frozen"}
    flat = next(f for f in findings if f.id == "loss-flat")
    assert flat.step == 50 and 1.38 < flat.evidence["end"] < 1.42
    frozen = next(f for f in findings if f.id == "eval-frozen")
    assert round(frozen.evidence["value"], 5) == 1.38629  # ln 4: chance on 4 choices


@pytest.mark.parametrize(
    "name",
    [
        "hf_trainer_state_healthy_seq2seq_5epochs.json",
        "hf_trainer_state_healthy_gemma3_lora_midrun_checkpoint.json",
        "hf_trainer_state_healthy_old_format_no_gradnorm.json",
        "hf_trainer_state_edge_empty_log_history.json",
    ],
)
def test_healthy_trainer_states_have_no_warnings(name):
    records, max_steps = hf_trainer_state(name)
    # With the plan: the seq2seq LR decays to 8.1e-07 at its last log, the normal end.
    assert serious_ids(run_detectors(records, RunFacts(planned_steps=max_steps))) == set()
    assert serious_ids(run_detectors(records)) == set()


def test_pinn_plateau_is_flat_from_about_epoch_ten():
    records = lightning_csv(
        "lightning_metrics_pinn_loss_plateau_sparse_columns.csv", "train_loss_epoch"
    )
    [finding] = run_detectors(records)
    assert finding.id == "loss-flat"
    assert 9 <= next(r["epoch"] for r in records if r["step"] == finding.step) <= 12


def test_mnist_three_epochs_is_too_short_to_judge():
    records = lightning_csv("lightning_metrics_healthy_mnist_3epochs.csv", "train_loss_epoch")
    assert run_detectors(records) == []


def test_rnn_relu_nan_from_the_first_line_is_one_finding():
    records = wordlm_log("pytorch_wordlm_rnn_relu_nan_from_start.log")
    [finding] = run_detectors(records)
    assert finding.id == "nonfinite-loss" and finding.step == 200


def test_rnn_tanh_worse_than_chance_with_huge_perplexity():
    records = wordlm_log("pytorch_wordlm_rnn_tanh_lr20_diverged_then_recovers.log")
    findings = run_detectors(records, RunFacts(vocab_size=33278))
    by_id = {f.id: f for f in findings}
    assert by_id["loss-above-chance"].step == 200
    assert 1.6 < by_id["loss-above-chance"].evidence["ratio"] < 1.8
    assert by_id["perplexity-overflow"].evidence["matches"] == "loss"
    # No progress while lr = 20, then a plateau near 8.4 at lr 5 (epochs 6-9).
    flat = [f for f in findings if f.id == "loss-flat"]
    assert [f.step for f in flat] == [200, 15115]
    assert 8.3 < flat[1].evidence["end"] < 8.5
    assert "nonfinite-loss" not in by_id and "lr-zero" not in by_id
