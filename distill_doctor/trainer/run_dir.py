"""A run directory's guard rails: one trainer at a time, resumes that can really resume, and a
config file that is only ever replaced whole, once the run it describes has started.

    open_run(run_dir, cfg, resume)   creates the folder (a clear error where it cannot be),
                                     takes its lock, refuses a fresh run over an existing one,
                                     and for a resume chooses the newest good checkpoint and
                                     refuses config changes that the checkpoint cannot follow
    ConfigWriter                     the observer that writes `config.json` (atomically) when
                                     the run starts: a run that fails to start rewrites nothing

Nothing here prints: the notes for the user come back as strings.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_doctor.config.loader import load_native
from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer.hooks import TrainControl

CONFIG_FILE = "config.json"
LOCK_FILE = ".lock"
# What a resume may change: how long it runs, how often it logs, evaluates and saves, and
# where. Everything else (models, tokenizer, data, batch shape, loss, optimizer, schedule,
# seed) is baked into the checkpoint's weights, optimizer state or data order: changing it
# would not continue the run, it would silently start a different one.
RESUMABLE_KEYS = frozenset(
    {
        "max_steps",
        "logging_steps",
        "eval_steps",
        "eval_max_batches",
        "save_steps",
        "keep_last",
        "device",
    }
)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def resume_conflicts(saved: TrainConfig, given: TrainConfig) -> list[str]:
    """`key: old -> new` for every changed key a resume cannot honour."""
    before, after = saved.model_dump(mode="json"), given.model_dump(mode="json")
    return [
        f"{key}: {_short(before[key])} -> {_short(after[key])}"
        for key in before
        if before[key] != after[key] and key not in RESUMABLE_KEYS
    ]


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    """`run_dir/config.json`, replaced whole: written to a temp file, fsynced, renamed."""
    final = run_dir / CONFIG_FILE
    temp = run_dir / f".{CONFIG_FILE}.tmp"
    try:
        with temp.open("w", encoding="utf-8") as file:
            file.write(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, final)
    except OSError as err:
        temp.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(final)) from err  # name the file


class ConfigWriter:
    """Writes the run's config when the run has started (models, data and the checkpoint all
    loaded): a resume that fails before that leaves `config.json` as it was."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, changed: bool) -> None:
        self.run_dir, self.cfg, self.changed = run_dir, cfg, changed

    def on_run_start(self, info: dict[str, Any], control: TrainControl) -> None:
        if self.changed:
            write_config(self.run_dir, self.cfg)

    def on_record(self, record: Any) -> None:
        pass

    def on_eval(self, record: Any) -> None:
        pass

    def on_run_end(self, status: str) -> None:
        pass


def make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(
            f"{run_dir}: exists and is not a directory; give --run-dir a folder path."
        ) from None
    except OSError as err:
        raise InputError(
            f"{run_dir}: cannot create the run directory ({err.strerror or err}); give "
            "--run-dir a folder you can write to."
        ) from None


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory while inside. A second trainer on the same
    folder is refused at once. The lock is `flock` on `run_dir/.lock`, which the kernel drops
    when its holder exits, however it exits: a killed run never leaves a stale lock."""
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise InputError(
            f"{run_dir}: cannot write in the run directory ({err.strerror or err}); give "
            "--run-dir a folder you can write to."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise InputError(
                f"{run_dir}: another `doctor train` (pid {holder}) is using this run directory. "
                "Wait for it to finish, or stop it (Ctrl-C saves a checkpoint) and then resume."
            ) from None
        with contextlib.suppress(OSError):  # the pid only names the holder; a full disk
            os.ftruncate(fd, 0)  # must not stop the lock
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock


@dataclass
class OpenedRun:
    """What `open_run` decided: the checkpoint to resume from (None: start at step 0), the
    config writer observer, and notes for the user."""

    checkpoint: Path | None
    config_writer: ConfigWriter
    notes: list[str] = field(default_factory=list)


def _resume_choice(run_dir: Path, cfg: TrainConfig) -> tuple[Path | None, bool, list[str]]:
    """(checkpoint, config changed, notes) for a resume; InputError when it cannot resume."""
    from distill_doctor.trainer import checkpoint as ckpt  # lazy: torch, not for the lock

    choice = ckpt.choose_checkpoint(run_dir)
    notes = [f"Checkpoint {folder.name} skipped: {problem}." for folder, problem in choice.skipped]
    saved = load_native(run_dir / CONFIG_FILE)
    changed = saved.model_dump(mode="json") != cfg.model_dump(mode="json")
    if choice.folder is None:
        notes.append(
            f"{run_dir} has no checkpoint yet (it stopped before its first save): starting "
            "from step 0 with its config."
        )
        return None, changed, notes
    conflicts = resume_conflicts(saved, cfg)
    if conflicts:
        raise InputError(
            f"{run_dir}: a resume cannot change {'; '.join(conflicts)}. The checkpoint was "
            "trained with the saved values, so the result would be a different run. Resume "
            "without these changes (a resume may change only "
            f"{', '.join(sorted(RESUMABLE_KEYS))}), or start a new run with another --run-dir. "
            "Nothing was changed."
        )
    if choice.skipped:
        notes.append(f"Resuming from {choice.folder.name}, the newest good checkpoint.")
    if saved.max_steps != cfg.max_steps and cfg.num_training_steps is None:
        before, after = (v if v is not None else "unset" for v in (saved.max_steps, cfg.max_steps))
        notes.append(
            f"max_steps {before} -> {after}: the LR schedule is re-planned "
            "for the new length (the LR follows the new schedule from this step on)."
        )
    return choice.folder, changed, notes


@contextlib.contextmanager
def open_run(run_dir: Path, cfg: TrainConfig, resume: bool) -> Iterator[OpenedRun]:
    """Create and lock the run directory and decide where the run starts; every refusal
    happens here, before anything in the folder is written (but the lock file)."""
    make_run_dir(run_dir)
    with run_lock(run_dir):
        if resume:
            checkpoint, changed, notes = _resume_choice(run_dir, cfg)
        else:
            if (run_dir / CONFIG_FILE).exists():
                raise InputError(
                    f"{run_dir} already holds a run; continue it with `doctor train --resume "
                    f"{run_dir}` or give another --run-dir."
                )
            checkpoint, changed, notes = None, True, []
        yield OpenedRun(checkpoint, ConfigWriter(run_dir, cfg, changed), notes)
