"""Checkpoints: written atomically, the last K kept, enough state to resume exactly.

Layout of one checkpoint, `checkpoints/step-000050/`:
    config.json + model.safetensors   the student (loadable with `from_pretrained`)
    loss.safetensors                  the distillation loss's learned projections (if any)
    trainer_state.pt                  optimizer, scheduler, GradScaler and RNG states
    watchdog.json                     the watchdog's findings and recent records (if watched)
    state.json                        step, epoch, micro-batches consumed in the epoch; written
                                      last, so its presence marks a complete checkpoint
A checkpoint is built in a `.tmp-*` folder, fsynced, then renamed into place: a crash while
writing leaves the previous checkpoint untouched and only a temp folder to sweep away.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from distill_doctor.errors import InputError

STATE_FILE = "state.json"
PREFIX = "step-"


@dataclass
class TrainState:
    """Where training stands: `step` optimizer steps done; `batch_in_epoch` micro-batches of
    epoch `epoch` consumed (the resume skips them)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    all_masked_batches: int = 0  # accumulated batches with no valid label token


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.iterdir(), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write(folder: Path, state: TrainState, modules: dict[str, Any]) -> None:
    student, loss_module = modules["student"], modules["loss"]
    student.config.save_pretrained(folder)
    save_model(student, str(folder / "model.safetensors"))
    if loss_module is not None and len(loss_module.state_dict()) > 0:
        save_model(loss_module, str(folder / "loss.safetensors"))
    trainer_state = {
        "optimizer": modules["optimizer"].state_dict(),
        "scheduler": modules["scheduler"].state_dict(),
        "rng": rng_state(),
    }
    if modules.get("scaler") is not None:
        trainer_state["scaler"] = modules["scaler"].state_dict()
    torch.save(trainer_state, folder / "trainer_state.pt")
    for name, owner in (modules.get("extra") or {}).items():  # e.g. the watchdog's history
        (folder / f"{name}.json").write_text(json.dumps(owner.state_dict()), encoding="utf-8")
    (folder / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")


def save_checkpoint(root: Path, state: TrainState, modules: dict[str, Any], keep_last: int) -> Path:
    """Write `root/step-NNNNNN` atomically, then delete all but the newest `keep_last`.

    `modules`: student, loss (or None), optimizer, scheduler, scaler (or None).
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{state.step:06d}"
    temp = root / f".tmp-{final.name}"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    _write(temp, state, modules)
    _fsync_tree(temp)
    if final.exists():  # a re-save of the same step (e.g. at the end): swap, never half-write
        old = root / f".old-{final.name}"
        os.replace(final, old)
        shutil.rmtree(old)
    os.replace(temp, final)
    _fsync_tree(root)
    for stale in complete_checkpoints(root)[:-keep_last]:
        shutil.rmtree(stale)
    return final


def complete_checkpoints(root: Path) -> list[Path]:
    """Finished checkpoints, oldest first (temp folders from a crash are not among them)."""
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{PREFIX}*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint of a run directory, or an InputError saying why not."""
    found = complete_checkpoints(run_dir / "checkpoints")
    if not found:
        raise InputError(
            f"{run_dir}: no complete checkpoint under {run_dir / 'checkpoints'}; nothing to "
            "resume (is this the run directory of a `doctor train` run?)."
        )
    return found[-1]


def load_checkpoint(folder: Path, modules: dict[str, Any]) -> TrainState:
    """Load weights and trainer state into the given modules; returns where training stood."""
    load_model(modules["student"], str(folder / "model.safetensors"))
    if (folder / "loss.safetensors").is_file():
        load_model(modules["loss"], str(folder / "loss.safetensors"))
    trainer_state = torch.load(folder / "trainer_state.pt", weights_only=True)  # no pickled code
    modules["optimizer"].load_state_dict(trainer_state["optimizer"])
    modules["scheduler"].load_state_dict(trainer_state["scheduler"])
    if modules.get("scaler") is not None and "scaler" in trainer_state:
        modules["scaler"].load_state_dict(trainer_state["scaler"])
    restore_rng(trainer_state["rng"])
    for name, owner in (modules.get("extra") or {}).items():
        saved = folder / f"{name}.json"
        if saved.is_file():  # a checkpoint from a run without it simply has none
            owner.load_state_dict(json.loads(saved.read_text(encoding="utf-8")))
    return TrainState(**json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))
