"""The real logs of public runs (tests/real_logs, see its SOURCES.md): parsed without error
and diagnosed as SOURCES.md describes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from distill_doctor.cli import app

HEALTHY = [
    "hf_trainer_state_healthy_seq2seq_5epochs.json",
    "hf_trainer_state_healthy_gemma3_lora_midrun_checkpoint.json",
    "hf_trainer_state_healthy_old_format_no_gradnorm.json",
    "lightning_metrics_healthy_mnist_3epochs.csv",
]


def postmortem(path, *extra: str) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["postmortem", str(path), "--format", "json", *extra])
    return result.exit_code, json.loads(result.stdout)


def first_steps(document: dict) -> dict[str, int]:
    steps: dict[str, int] = {}
    for finding in document["findings"]:
        steps[finding["id"]] = min(steps.get(finding["id"], finding["step"]), finding["step"])
    return steps


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_runs_have_no_findings(real_log, name):
    code, document = postmortem(real_log(name))
    assert (code, document["verdict"], document["findings"]) == (0, "healthy", [])
    assert document["records"] > 2 and document["skipped"] == []


def test_empty_log_history_is_no_data(real_log):
    code, document = postmortem(real_log("hf_trainer_state_edge_empty_log_history.json"))
    assert (code, document["verdict"], document["findings"]) == (2, "no-data", [])


def test_never_learned_chance_level_run(real_log):
    code, document = postmortem(
        real_log("hf_trainer_state_flat_loss_chance_level_identical_eval.json")
    )
    steps = first_steps(document)
    assert code == 1 and document["verdict"] == "sick"
    assert steps["eval-frozen"] <= 750  # eval_loss = ln 4 at 41 evaluations from step 750 on
    assert steps["loss-flat"] <= 3140 // 2  # 1.383-1.417 for all 20 epochs


def test_pinn_loss_plateau(real_log):
    _, document = postmortem(real_log("lightning_metrics_pinn_loss_plateau_sparse_columns.csv"))
    assert document["verdict"] == "sick"
    assert 0 < first_steps(document)["loss-flat"] <= 12 * 63  # flat from about epoch 12


def test_wordlm_nan_from_the_first_log_line(real_log):
    code, document = postmortem(real_log("pytorch_wordlm_rnn_relu_nan_from_start.log"))
    assert code == 1 and first_steps(document)["nonfinite-loss"] == 200
    assert document["last_step"] == 5 * 2983


def test_wordlm_lr20_worse_than_random(real_log):
    path = real_log("pytorch_wordlm_rnn_tanh_lr20_diverged_then_recovers.log")
    _, document = postmortem(path, "--vocab-size", "33278")
    steps = first_steps(document)
    assert steps["loss-above-chance"] == 200  # 17.7 vs ln(33278) = 10.4
    assert steps["perplexity-overflow"] == 200  # ppl printed as 5e7 and 1.7e17
    # The valid-loss spike SOURCES.md describes: 16.95 at epoch 4, 30.37 at epoch 5.
    [spike] = [f for f in document["findings"] if f["id"] == "eval-regression"]
    assert spike["evidence"]["best_eval_loss"] == 16.95 and spike["evidence"]["eval_loss"] == 30.37


@pytest.mark.parametrize("name", ["SOURCES.md", "../../README.md"])
def test_a_markdown_document_is_refused_not_read_as_a_log(real_log, name):
    # SOURCES.md says "LR=0" and "lr=20"; the README quotes whole HF dict lines.
    result = CliRunner().invoke(app, ["postmortem", str(real_log(name))])
    assert result.exit_code == 2
    assert "a document (Markdown or similar)" in " ".join(result.output.split())
