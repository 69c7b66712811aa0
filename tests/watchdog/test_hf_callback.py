"""`DoctorCallback` on a real `transformers.Trainer` (tiny GPT-2 on CPU, a few steps each)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
from hf_runs import VOCAB, Sequences  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments  # noqa: E402

from distill_doctor import DoctorCallback  # noqa: E402
from distill_doctor.findings import Severity  # noqa: E402


def dataset(masked: bool) -> Sequences:
    data = Sequences()
    data.masked = masked
    return data


def tiny_model() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=1,
        n_embd=16,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=32,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def run(tmp_path, *, steps=12, lr=1e-3, masked=False, optimizers=None, on_error="abort"):
    model = tiny_model()
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=lr,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        warmup_steps=0,
    )
    callback = DoctorCallback(on_error=on_error, events_path=tmp_path / "events.jsonl", quiet=True)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset(masked),
        callbacks=[callback],
        optimizers=optimizers(model, steps) if optimizers else (None, None),
    )
    trainer.train()
    return callback, trainer


def test_scheduler_told_too_few_steps_is_predicted_and_stops_the_run(tmp_path):
    def too_few(model, steps):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 0, steps // 4)
        return optimizer, schedule

    callback, trainer = run(tmp_path, steps=40, optimizers=too_few)
    [finding] = [f for f in callback.findings if f.id == "lr-zero"]
    assert finding.evidence["predicted"] is True
    assert finding.evidence["zero_at_step"] == 11  # LR 0 after the 10 steps it was told
    assert trainer.state.global_step < 40  # stopped, not trained to the end at LR 0
    assert any(p.name.startswith("checkpoint-") for p in (tmp_path / "out").iterdir())


def test_all_masked_labels_are_caught(tmp_path):
    callback, _ = run(tmp_path, masked=True, on_error="warn")
    ids = {f.id for f in callback.findings}
    assert "all-labels-masked" in ids
    [escalated] = [
        f for f in callback.findings if f.id == "all-labels-masked" and f.severity is Severity.ERROR
    ]
    assert escalated.evidence["masked_batches"] >= 3


def test_learning_rate_far_too_high_is_caught(tmp_path):
    callback, _ = run(tmp_path, steps=30, lr=30.0, on_error="warn")
    ids = {f.id for f in callback.findings}
    assert ids & {"loss-divergence", "grad-explosion", "nonfinite-loss"}, ids


def test_healthy_run_raises_nothing(tmp_path):
    callback, trainer = run(tmp_path, steps=30, lr=3e-3)
    assert callback.findings == []
    assert trainer.state.global_step == 30
    assert (
        not (tmp_path / "events.jsonl").exists()
        or "finding" not in (tmp_path / "events.jsonl").read_text()
    )


def test_adjust_rebuilds_a_too_short_schedule_and_the_run_trains_to_the_end(tmp_path):
    def too_few(model, steps):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        schedule = transformers.get_linear_schedule_with_warmup(optimizer, 0, steps // 4)
        return optimizer, schedule

    callback, trainer = run(tmp_path, steps=40, optimizers=too_few, on_error="adjust")
    assert trainer.state.global_step == 40  # repaired, not stopped
    lrs = [h["learning_rate"] for h in trainer.state.log_history if "learning_rate" in h]
    assert min(lrs[:30]) > 0  # the broken schedule hit 0 at step 11
    assert lrs[19] == pytest.approx(1e-3 * (1 - 19 / 40), rel=0.01)  # the configured decay
    events = (tmp_path / "events.jsonl").read_text()
    assert '"action": "adjust"' in events and '"finding": "lr-zero"' in events


def test_the_printed_line_keeps_its_brackets(capsys):
    # "[error]" is a Rich style tag: printed as markup, the severity vanished from the line.
    from distill_doctor.findings import Finding, Severity
    from distill_doctor.watchdog.hf_callback import _Printer
    from distill_doctor.watchdog.policy import Action

    finding = Finding(
        id="lr-zero", code="DD201", severity=Severity.ERROR, message="LR is 0 [/] [bold]", step=4
    )
    _Printer().on_finding(finding, Action.ABORT)
    line = " ".join(capsys.readouterr().err.split())
    assert "[Doctor] [error] lr-zero (step 4, abort): LR is 0 [/] [bold]" in line
