"""What a run's logs say about its plan, for `doctor watch`: the optimizer steps it will take
(the detectors judge an LR of 0 against them), how often it logs and when it saves a
checkpoint (a kill waits for the next one when asked).

Sources: a Hugging Face run's TrainingArguments, which its TensorBoard callback writes once as
the text summary `args`; each checkpoint's `trainer_state.json`; and, for a run planned in
epochs (`max_steps` -1), the steps per epoch its own logs show (`step / epoch`)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from distill_doctor import records as R

HF_ARGS_TAG = "args/text_summary"  # TensorBoardCallback: tb_writer.add_text("args", ...)
MAX_ARGS_BYTES = 1024 * 1024  # TrainingArguments as JSON are a few KiB
STATE_TAIL_BYTES = 64 * 1024
# trainer_state.json writes its keys sorted, so the plan follows log_history, near the end.
_STATE_KEY = re.compile(rb'"(max_steps|save_steps|logging_steps|num_train_epochs)"\s*:\s*(\d+)')


@dataclass
class RunPlan:
    planned_steps: int | None = None
    logging_steps: int | None = None
    save_steps: int | None = None  # None: the logs show no step cadence of checkpoints
    epochs: float | None = None  # num_train_epochs, for a run planned in epochs

    def update(self, known: dict[str, float | int | None]) -> bool:
        """Take what a source states (positive values only); True when the plan changed."""
        before = (self.planned_steps, self.logging_steps, self.save_steps, self.epochs)
        for name in ("planned_steps", "logging_steps", "save_steps"):
            value = known.get(name)
            if isinstance(value, int) and value > 0:
                setattr(self, name, value)
        epochs = known.get("epochs")
        if isinstance(epochs, (int, float)) and math.isfinite(epochs) and epochs > 0:
            self.epochs = float(epochs)
        return before != (self.planned_steps, self.logging_steps, self.save_steps, self.epochs)

    def from_epochs(self, record: dict[str, object]) -> bool:
        """A run planned in epochs: its planned steps from the first record that shows both
        a step and a fractional epoch. True when that gave the plan its steps."""
        if self.planned_steps or not self.epochs:
            return False
        step, epoch = record.get(R.STEP), record.get(R.EPOCH)
        if not isinstance(step, int) or step <= 0 or not isinstance(epoch, (int, float)):
            return False
        if not math.isfinite(epoch) or epoch <= 0:
            return False
        self.planned_steps = max(step, round(self.epochs * step / epoch))
        return True

    def next_checkpoint(self, step: int) -> int | None:
        """The step of the next checkpoint after `step`, when the logs show the cadence."""
        if not self.save_steps:
            return None
        due = (step // self.save_steps + 1) * self.save_steps
        if self.planned_steps:
            due = min(due, self.planned_steps)  # the Trainer saves at the end too
        return due if due > step else None


def training_args_facts(args: object) -> dict[str, float | int | None]:
    """The plan in a Hugging Face TrainingArguments dict (as `to_json_string` writes it)."""
    if not isinstance(args, dict):
        return {}
    steps = args.get("save_steps")
    by_steps = args.get("save_strategy") in ("steps", "IntervalStrategy.STEPS")
    return {
        "planned_steps": _positive_int(args.get("max_steps")),
        "logging_steps": _positive_int(args.get("logging_steps")),
        # save_steps below 1 is a fraction of the run: resolved only once the steps are known
        "save_steps": _positive_int(steps) if by_steps else None,
        "epochs": _number(args.get("num_train_epochs")),
    }


def event_facts(event: object) -> dict[str, float | int | None]:
    """The plan in a TensorBoard event, when it is the HF TrainingArguments text summary."""
    for value in event.summary.value:  # type: ignore[attr-defined]
        if value.tag != HF_ARGS_TAG or not value.HasField("tensor"):
            continue
        strings = value.tensor.string_val
        if not strings or len(strings[0]) > MAX_ARGS_BYTES:
            return {}
        try:
            return training_args_facts(json.loads(strings[0].decode("utf-8", "replace")))
        except (ValueError, RecursionError):
            return {}
    return {}


def checkpoint_state_facts(path: Path) -> dict[str, float | int | None]:
    """The plan at the end of a checkpoint's trainer_state.json (read from its tail only)."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, path.stat().st_size - STATE_TAIL_BYTES))
            tail = file.read()
    except OSError:
        return {}
    found = {name.decode(): int(value) for name, value in _STATE_KEY.findall(tail)}
    return {
        "planned_steps": found.get("max_steps"),
        "logging_steps": found.get("logging_steps"),
        "save_steps": found.get("save_steps"),
        "epochs": found.get("num_train_epochs"),
    }


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
