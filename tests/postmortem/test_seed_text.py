"""The seed's plain/tqdm log: its own lines from the write-up, and whole fixture logs."""

from __future__ import annotations

import math

import pytest

from distill_doctor.postmortem.analysis import analyze
from distill_doctor.postmortem.parsers import seed_text

SEED_LINES = (
    "[Scheduler] Optimizer steps: 4,687\n"
    "[Scheduler] Warmup steps: 468 (10.0%)\n"
    "Epoch 1:   0%|          | 16/25000 [00:06<2:46:40,  2.50it/s, loss=18.2, lr=1.50e-05]"
    "\rEpoch 1:   0%|          | 32/25000 [00:12<2:46:40,  2.50it/s, loss=15.8, lr=0.00e+00]\n"
    "[Warning] lm_loss produced non-finite value (nan); clamping to zero.\n"
    "Step 1000: loss=101.40, kd=21.14, feature=40.79, attention=0.49\n"
    "[Eval] loss: 22.3, perplexity: 485,165,195.41\n"
)


@pytest.fixture
def seed_log(tmp_path):
    path = tmp_path / "train.log"
    path.write_bytes(SEED_LINES.encode())
    return path


def test_seed_lines_become_records(seed_log, parse_all):
    records, skipped = parse_all(seed_text, seed_log, accumulation=16)
    assert records[0] == {"scheduler_steps": 4687, "step": 0}
    assert records[1] == {"loss": 18.2, "lr": 1.5e-05, "micro_step": 16, "step": 1}
    assert records[2] == {"loss": 15.8, "lr": 0.0, "micro_step": 32, "step": 2}
    assert records[3]["warning"].startswith("[Warning] lm_loss") and records[3]["step"] == 2
    assert records[4] == {
        "eval_loss": 101.4,
        "eval_kd": 21.14,
        "eval_feature": 40.79,
        "eval_attention": 0.49,
        "step": 1000,
    }
    assert records[5] == {"eval_loss": 22.3, "eval_ppl": 485165195.41, "step": 1000}
    assert skipped.lines == 0


def test_accumulation_read_from_the_log_and_bars_summed_over_epochs(tmp_path, parse_all):
    lines = ["gradient_accumulation_steps: 4"]
    for epoch in (1, 2):
        lines += [f"Epoch {epoch}: | {n}/8 [00:01<00:01, 2.5it/s, loss={n}.0]" for n in (4, 8)]
    path = tmp_path / "a.log"
    path.write_text("\n".join(lines))
    records, _ = parse_all(seed_text, path)
    assert [(r["micro_step"], r["step"]) for r in records] == [(4, 1), (8, 2), (12, 3), (16, 4)]


def test_ansi_colours_and_identical_redraws(tmp_path, parse_all):
    bar = "\x1b[32mEpoch 1\x1b[0m: 5%| | {n}/100 [00:01<00:10, 9it/s, loss=2.5, lr=1e-4]"
    path = tmp_path / "c.log"
    path.write_bytes("\r".join(bar.format(n=n) for n in range(1, 6)).encode() + b"\r\n")
    records, _ = parse_all(seed_text, path)
    assert records == [{"loss": 2.5, "lr": 1e-4, "micro_step": 1, "step": 1}]


def test_nan_and_inf_values(tmp_path, parse_all):
    path = tmp_path / "n.log"
    path.write_text("loss=nan lr=inf\nloss=-inf\n")
    records, _ = parse_all(seed_text, path)
    assert math.isnan(records[0]["loss"]) and records[0]["lr"] == math.inf
    assert records[1]["loss"] == -math.inf


def test_broken_seed_run_diagnosed_with_config(fixture):
    from distill_doctor.postmortem.report import build_report
    from distill_doctor.postmortem.run_config import load_run_config, run_facts

    config = load_run_config(fixture("seed_config.json"))
    analysis = analyze([fixture("seed_broken.log")], run_facts(config))
    report = build_report(analysis, config)
    first = {f.id: f.step for f in reversed(report.timeline)}
    assert first["lr-zero"] == 18
    assert first["nonfinite-loss"] == 40
    assert first["eval-frozen"] == 100
    assert first["perplexity-overflow"] == 100  # 485,165,195 = exp(20), not exp(101.40)
    # The config weights KD, feature and attention into `loss`: 21.5 is no CE to judge.
    assert config.loss_is_combined and "loss-above-chance" not in first
    assert report.verdict == "sick" and report.exit_code == 1
    assert report.first_problem is not None and report.first_problem.id == "lr-zero"
    scheduler = report.chains[0]
    assert "the scheduler, not the loss" in scheduler.diagnosis
    assert "18 total steps" in scheduler.diagnosis and "300 optimizer steps" in scheduler.diagnosis
    diagnoses = " ".join(chain.diagnosis for chain in report.chains)
    assert "no weight updates" in diagnoses and "computed from the wrong loss" in diagnoses


def test_healthy_seed_run_has_no_problem(fixture):
    analysis = analyze([fixture("seed_healthy.log")])
    assert analysis.metric_records > 30  # 300 steps, sampled at one per 10 steps, + evals
    assert [f for f in analysis.findings if f.severity.value != "info"] == []


def _long_run(steps: int, nan_at: int | None = None) -> bytes:
    """One epoch bar redrawn at each of 16 micro-batches per step, postfix set per step."""
    redraws = []
    for micro in range(1, steps * 16 + 1):
        step = micro // 16
        loss = "nan" if step == nan_at else f"{5 - step / 1000:.4f}"
        redraws.append(f"Epoch 1: | {micro}/{steps * 16} [00:01<00:09, 9.9it/s, loss={loss}]")
    return ("gradient_accumulation_steps: 16\n" + "\r".join(redraws) + "\n").encode()


def test_long_redraw_run_is_sampled_about_once_per_ten_steps(tmp_path, parse_all):
    path = tmp_path / "run.log"
    path.write_bytes(_long_run(500))
    records, _ = parse_all(seed_text, path)
    steps = [r["step"] for r in records]
    assert 45 <= len(steps) <= 55 and steps == sorted(steps)
    assert steps[0] == 0 and steps[-1] == 500  # the first and the last redraw are always read
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert max(gaps) <= 11


def test_long_run_with_a_nan_is_read_whole(tmp_path, parse_all):
    path = tmp_path / "nan.log"
    path.write_bytes(_long_run(500, nan_at=333))
    records, _ = parse_all(seed_text, path)
    assert len(records) == 501  # one per step: identical redraws within a step collapse
    assert [r["step"] for r in records if math.isnan(r["loss"])] == [333]
