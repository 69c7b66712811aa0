"""Checkpoints: round trip, atomic writes (a crash mid-write keeps the last good one), keep-K."""

import json
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

    def crash(*args, **kwargs):  # dies after the weights are written, before the state
        # what torch.save raises when the disk fills up under it
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(InputError, match="torch.save failed: .* MB free there") as raised:
        ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=2), modules, keep_last=2)
    monkeypatch.undo()
    assert "step-000001, is kept" in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000001"]  # temp folder removed

    fresh = make_modules(3)
    assert ckpt.load_checkpoint(ckpt.complete_checkpoints(tmp_path)[-1], fresh).step == 1
    for name, value in fresh["student"].state_dict().items():
        assert torch.equal(value, before[name])
    ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=2), modules, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000001", "step-000002"]


def test_manifest_lists_every_file_with_its_size_and_checksum(tmp_path):
    folder = ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=1), make_modules(0), 2)
    files = json.loads((folder / ckpt.MANIFEST_FILE).read_text())["files"]
    assert set(files) == {p.name for p in folder.iterdir()} - {ckpt.MANIFEST_FILE}
    assert all(files[name]["bytes"] == (folder / name).stat().st_size for name in files)
    assert ckpt.checkpoint_problem(folder) is None


def flip_a_byte(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("manifest", [True, False])
def test_a_damaged_newest_checkpoint_is_skipped_for_the_newest_good_one(tmp_path, manifest):
    modules = make_modules(0)
    for step in (1, 2):
        folder = ckpt.save_checkpoint(
            tmp_path / "checkpoints", ckpt.TrainState(step=step), modules, 3
        )
        if not manifest:  # as written before manifests existed
            (folder / ckpt.MANIFEST_FILE).unlink()
    weights = tmp_path / "checkpoints/step-000002/model.safetensors"
    with weights.open("r+b") as file:
        file.truncate(weights.stat().st_size - 10)
    choice = ckpt.choose_checkpoint(tmp_path)
    assert choice.folder.name == "step-000001"
    [(skipped, problem)] = choice.skipped
    assert skipped.name == "step-000002" and "model.safetensors is" in problem
    assert "truncated" in problem
    assert ckpt.load_checkpoint(choice.folder, make_modules(1)).step == 1


def test_a_changed_byte_fails_the_checksum_and_an_old_checkpoint_still_loads(tmp_path):
    modules = make_modules(0)
    folder = ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=1), modules, 2)
    flip_a_byte(folder / "trainer_state.pt", -100)
    assert (
        ckpt.checkpoint_problem(folder)
        == "trainer_state.pt does not match its checksum in the manifest"
    )
    old = ckpt.save_checkpoint(tmp_path, ckpt.TrainState(step=2), modules, 2)
    (old / ckpt.MANIFEST_FILE).unlink()
    assert ckpt.checkpoint_problem(old) is None
    assert ckpt.load_checkpoint(old, make_modules(1)).step == 2
    (old / "trainer_state.pt").write_bytes(b"PK\x03\x04 torn")
    assert ckpt.checkpoint_problem(old).startswith("cannot be read")


def test_every_checkpoint_damaged_is_an_input_error(tmp_path):
    folder = ckpt.save_checkpoint(
        tmp_path / "checkpoints", ckpt.TrainState(step=1), make_modules(0), 2
    )
    (folder / "model.safetensors").unlink()
    with pytest.raises(InputError, match="step-000001: model.safetensors is missing"):
        ckpt.choose_checkpoint(tmp_path)


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
