"""Checkpoints: round trip, atomic writes (a crash mid-write keeps the last good one), keep-K."""

import random

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from distill_doctor.errors import InputError
from distill_doctor.trainer import checkpoint as ckpt


def make_modules(seed: int) -> dict:
    torch.manual_seed(seed)
    student = GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=20, n_positions=8)
    )
    loss = torch.nn.Linear(16, 24)  # stands in for the loss's learned projections
    optimizer = torch.optim.AdamW([*student.parameters(), *loss.parameters()], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (s + 1))
    return {
        "student": student,
        "loss": loss,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "scaler": None,
    }


def take_a_step(modules: dict) -> None:
    ids = torch.randint(0, 20, (2, 8))
    out = modules["student"](input_ids=ids, labels=ids)
    (out.loss + modules["loss"](out.logits.new_ones(16)).sum() * 0.0).backward()
    modules["optimizer"].step()
    modules["scheduler"].step()


def test_round_trip_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    saved = make_modules(0)
    take_a_step(saved)
    state = ckpt.TrainState(step=7, epoch=1, batch_in_epoch=12, all_masked_batches=1)
    random.seed(5)
    torch.manual_seed(5)
    ckpt.save_checkpoint(tmp_path / "checkpoints", state, saved, keep_last=2)
    expected_draws = (random.random(), torch.rand(3))

    loaded = make_modules(1)
    restored = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), loaded)
    assert restored == state
    for a, b in zip(
        saved["student"].state_dict().values(),
        loaded["student"].state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)
    assert torch.equal(saved["loss"].weight, loaded["loss"].weight)
    assert loaded["scheduler"].last_epoch == saved["scheduler"].last_epoch == 1
    assert loaded["optimizer"].state_dict()["state"][0]["step"] == 1
    assert (random.random(), *torch.rand(3).tolist()) == (
        expected_draws[0],
        *expected_draws[1].tolist(),
    )


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    modules = make_modules(0)
    ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=1), modules, keep_last=2)
    before = {k: v.clone() for k, v in modules["student"].state_dict().items()}
    take_a_step(modules)

    def crash(*args, **kwargs):
        raise OSError("disk full")  # dies after the weights are written, before the state

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=2), modules, keep_last=2)
    monkeypatch.undo()

    assert [p.name for p in ckpt.complete_checkpoints(tmp_path)] == ["step-000001"]
    fresh = make_modules(3)
    assert ckpt.load_checkpoint(ckpt.complete_checkpoints(tmp_path)[-1], fresh).step == 1
    for name, value in fresh["student"].state_dict().items():
        assert torch.equal(value, before[name])
    # the next save sweeps the crash's temp folder away and succeeds
    ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=2), modules, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000001", "step-000002"]


def test_keeps_only_the_last_k(tmp_path):
    modules = make_modules(0)
    for step in (1, 2, 3, 10, 11):
        ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=step), modules, keep_last=2)
    assert [p.name for p in ckpt.complete_checkpoints(tmp_path)] == ["step-000010", "step-000011"]
    ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=11), modules, keep_last=2)  # re-save
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("step-")] == []


def test_resume_without_checkpoint_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no complete checkpoint"):
        ckpt.latest_checkpoint(tmp_path)
