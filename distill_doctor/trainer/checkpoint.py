"""Checkpoints: written atomically, the last K kept, enough state to resume exactly.

Layout of one checkpoint, `checkpoints/step-000050/`:
    config.json + model.safetensors   the student (loadable with `from_pretrained`)
    loss.safetensors                  the distillation loss's learned projections (if any)
    trainer_state.pt                  optimizer, scheduler, GradScaler and RNG states (under
                                      torchrun: every rank's RNG state; one checkpoint per run)
    watchdog.json                     the watchdog's findings and recent records (if watched)
    state.json                        step, epoch, micro-batches consumed in the epoch; its
                                      presence marks a complete checkpoint
    manifest.json                     the size and SHA-256 of every file above; written last
A checkpoint is built in a `.tmp-*` folder, fsynced, then renamed into place: a crash while
writing leaves the previous checkpoint untouched and only a temp folder to sweep away. A
failed write (a full disk) removes its temp folder and says so. A resume verifies the newest
checkpoint against its manifest (one written before manifests existed is checked by reading
it) and falls back to the newest good one, saying which it skipped and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from distill_doctor.errors import InputError

STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
PREFIX = "step-"


@dataclass
class TrainState:
    """Where training stands: `step` optimizer steps done; `batch_in_epoch` micro-batches of
    epoch `epoch` consumed (the resume skips them)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    all_masked_batches: int = 0  # accumulated batches with no valid label token
    world_size: int = 1  # ranks that trained it (a resume needs as many)


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """`manifest.json`: size and SHA-256 of every file of the checkpoint, written last (to a
    temp name, then renamed) so that a manifest is never itself half-written."""
    files = {
        path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST_FILE
    }
    temp = folder / f".{MANIFEST_FILE}.tmp"
    temp.write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")
    os.replace(temp, folder / MANIFEST_FILE)


def _write(
    folder: Path, state: TrainState, modules: dict[str, Any], rng_states: list | None
) -> None:
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
    if rng_states is not None:
        trainer_state["rng_per_rank"] = rng_states
    if modules.get("scaler") is not None:
        trainer_state["scaler"] = modules["scaler"].state_dict()
    try:
        torch.save(trainer_state, folder / "trainer_state.pt")
    except RuntimeError as err:  # torch reports a failed write (a full disk) as RuntimeError
        first_line = (str(err).splitlines() or [""])[0]
        raise OSError(f"torch.save failed: {first_line}") from err
    for name, owner in (modules.get("extra") or {}).items():  # e.g. the watchdog's history
        (folder / f"{name}.json").write_text(json.dumps(owner.state_dict()), encoding="utf-8")
    (folder / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")
    write_manifest(folder)


def _free_space(folder: Path) -> str:
    try:
        return f"; {shutil.disk_usage(folder).free / 1e6:,.0f} MB free there"
    except OSError:
        return ""


def save_checkpoint(
    root: Path,
    state: TrainState,
    modules: dict[str, Any],
    keep_last: int,
    rng_states: list | None = None,
) -> Path:
    """Write `root/step-NNNNNN` atomically, then delete all but the newest `keep_last`.

    `modules`: student, loss (or None), optimizer, scheduler, scaler (or None); `rng_states`:
    every rank's RNG state, in rank order, when several ranks trained. A write that fails (a
    full disk, a quota) removes its temp folder, keeps every finished checkpoint and becomes an
    InputError that says so.
    """
    final = root / f"{PREFIX}{state.step:06d}"
    temp = root / f".tmp-{final.name}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir()
        _write(temp, state, modules, rng_states)
        _fsync_tree(temp)
    except (OSError, SafetensorError) as err:  # safetensors reports I/O errors as its own
        shutil.rmtree(temp, ignore_errors=True)
        kept = complete_checkpoints(root)
        last_good = (
            f"the last good checkpoint, {kept[-1].name}, is kept"
            if kept
            else "no earlier one exists"
        )
        filename = getattr(err, "filename", None)
        where = f" ({filename})" if filename else ""
        raise InputError(
            f"could not write checkpoint {final.name} in {root}: "
            f"{getattr(err, 'strerror', None) or err}{where}{_free_space(root)}. The temporary "
            f"folder is removed and {last_good}; free some space, then continue with "
            f"`doctor train --resume {root.parent}`."
        ) from None
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
    found = [
        p
        for p in root.glob(f"{PREFIX}*")
        if p.name[len(PREFIX) :].isdigit() and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def _safetensors_problem(path: Path) -> str | None:
    """Whether a safetensors file is as long as its header says (a truncated copy is not)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(8)
        header_bytes = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < header_bytes <= size - 8:
            return f"{path.name} has no valid safetensors header"
        try:
            header = json.loads(file.read(header_bytes))
            ends = [
                entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"
            ]
        except (ValueError, TypeError, KeyError, IndexError):
            return f"{path.name} has no valid safetensors header"
    expected = 8 + header_bytes + max(ends, default=0)
    if size != expected:
        return f"{path.name} is {size:,} bytes, its header needs {expected:,} (truncated?)"
    return None


def _unmanifested_problem(folder: Path) -> str | None:
    """A checkpoint written before manifests: read what can be read without the modules."""
    for name in ("model.safetensors", "loss.safetensors"):
        if (folder / name).is_file() and (problem := _safetensors_problem(folder / name)):
            return problem
    if not (folder / "model.safetensors").is_file():
        return "model.safetensors is missing"
    try:
        json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        torch.load(folder / "trainer_state.pt", weights_only=True)
    except Exception as err:  # a torn zip, bad JSON, a missing file: all mean "do not use"
        first_line = (str(err).splitlines() or [""])[0][:120]
        return f"cannot be read ({type(err).__name__}: {first_line})"
    return None


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (a file missing, truncated or changed since it
    was written), or None when it is good."""
    manifest = folder / MANIFEST_FILE
    if not manifest.is_file():
        return _unmanifested_problem(folder)
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        expected = {name: (int(f["bytes"]), str(f["sha256"])) for name, f in files.items()}
    except (OSError, ValueError, TypeError, KeyError):
        return f"{MANIFEST_FILE} is unreadable"
    for name, (size, digest) in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return (
                f"{name} is {path.stat().st_size:,} bytes, the manifest says {size:,} (truncated?)"
            )
        if _sha256(path) != digest:
            return f"{name} does not match its checksum in the manifest"
    return None


@dataclass(frozen=True)
class CheckpointChoice:
    """The checkpoint a resume starts from (None: the run has none yet) and, for each newer
    one it passed over, why."""

    folder: Path | None
    skipped: list[tuple[Path, str]]


def choose_checkpoint(run_dir: Path) -> CheckpointChoice:
    """The newest verified checkpoint of a run directory; an InputError when it has
    checkpoints and none of them is good (never a silent restart over them)."""
    skipped: list[tuple[Path, str]] = []
    for folder in reversed(complete_checkpoints(run_dir / "checkpoints")):
        problem = checkpoint_problem(folder)
        if problem is None:
            return CheckpointChoice(folder, skipped)
        skipped.append((folder, problem))
    if skipped:
        reasons = "; ".join(f"{folder.name}: {problem}" for folder, problem in skipped)
        raise InputError(
            f"{run_dir}: no checkpoint can be resumed from ({reasons}). Start a new run with "
            "another --run-dir (or restore the checkpoints from a backup)."
        )
    return CheckpointChoice(None, [])


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest good checkpoint of a run directory, or an InputError saying why there is none."""
    folder = choose_checkpoint(run_dir).folder
    if folder is None:
        raise InputError(
            f"{run_dir}: no complete checkpoint under {run_dir / 'checkpoints'}; nothing to "
            "resume (is this the run directory of a `doctor train` run?)."
        )
    return folder


def read_state(folder: Path) -> TrainState:
    return TrainState(**json.loads((folder / STATE_FILE).read_text(encoding="utf-8")))


def load_checkpoint(folder: Path, modules: dict[str, Any], rank: int = 0) -> TrainState:
    """Load weights and trainer state into the given modules (and rank `rank`'s RNG state);
    returns where training stood."""
    load_model(modules["student"], str(folder / "model.safetensors"))
    if (folder / "loss.safetensors").is_file():
        load_model(modules["loss"], str(folder / "loss.safetensors"))
    trainer_state = torch.load(folder / "trainer_state.pt", weights_only=True)  # no pickled code
    modules["optimizer"].load_state_dict(trainer_state["optimizer"])
    modules["scheduler"].load_state_dict(trainer_state["scheduler"])
    if modules.get("scaler") is not None and "scaler" in trainer_state:
        modules["scaler"].load_state_dict(trainer_state["scaler"])
    restore_rng(trainer_state.get("rng_per_rank", [trainer_state["rng"]])[rank])
    for name, owner in (modules.get("extra") or {}).items():
        saved = folder / f"{name}.json"
        if saved.is_file():  # a checkpoint from a run without it simply has none
            owner.load_state_dict(json.loads(saved.read_text(encoding="utf-8")))
    return read_state(folder)
