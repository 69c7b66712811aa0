"""The trainer's built-in observers (see `hooks`): events.jsonl, TensorBoard scalars and a Rich
progress bar. Each is a short class; each writes every `logging_steps` optimizer steps (and
step 1, so a run's start is always visible) except the progress bar, which moves every step.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from distill_doctor.events import EventLog
from distill_doctor.records import EVAL_PREFIX, LOSS, LR, STEP, STEPS_PER_S, Record
from distill_doctor.trainer.hooks import TrainControl


def _due(step: int, every: int) -> bool:
    return step == 1 or step % every == 0


class EventsSink:
    """`run`, `metrics` and `eval` events to `run_dir/events.jsonl` (the postmortem reads it)."""

    def __init__(self, path: Path, logging_steps: int) -> None:
        self.log = EventLog(path)
        self.logging_steps = logging_steps
        self.last_record: Record | None = None

    def on_run_start(self, info: dict[str, Any], control: TrainControl) -> None:
        self.log.write("run", **{k: v for k, v in info.items() if k != "preflight"})
        for finding in info["preflight"]:  # the postmortem reports logged findings too
            self.log.write("finding", **finding.to_dict())

    def on_record(self, record: Record) -> None:
        self.last_record = record
        if _due(record[STEP], self.logging_steps):
            self.log.write("metrics", **record)
            self.last_record = None

    def on_eval(self, record: Record) -> None:
        self.log.write("eval", **record)

    def on_finding(self, finding: Any, action: Any) -> None:
        self.log.write("finding", **finding.to_dict(), action=action.value)

    def on_action(self, event: dict[str, Any]) -> None:
        self.log.write("action", **event)

    def on_run_end(self, status: str) -> None:
        if self.last_record is not None:  # the final step, so the log ends where the run did
            self.log.write("metrics", **self.last_record)
        self.log.close()


def tensorboard_tag(key: str) -> str:
    """`eval_ce` -> `eval/ce`, `teacher_ce` -> `teacher/ce`, `loss_kd` -> `train/loss_kd`: the
    tags `doctor postmortem` maps back onto the same Record keys."""
    for group in (EVAL_PREFIX, "teacher_"):
        if key.startswith(group):
            return f"{group[:-1]}/{key[len(group) :]}"
    return f"train/{key}"


class TensorBoardSink:
    """Scalars (tagged by `tensorboard_tag`) in `run_dir/tensorboard/`."""

    def __init__(self, folder: Path, logging_steps: int) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: imports tensorboard

        self.writer = SummaryWriter(log_dir=str(folder))
        self.logging_steps = logging_steps

    def _scalars(self, record: Record) -> None:
        for key, value in record.items():
            if key != STEP and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tensorboard_tag(key), value, record[STEP])

    def on_run_start(self, info: dict[str, Any], control: TrainControl) -> None:
        self.writer.add_text("config", f"```\n{info.get('config')}\n```")

    def on_record(self, record: Record) -> None:
        if _due(record[STEP], self.logging_steps):
            self._scalars(record)

    def on_finding(self, finding: Any, action: Any) -> None:
        text = f"**{finding.severity.value}** `{finding.id}` ({action.value}): {finding.message}"
        self.writer.add_text(f"findings/{finding.id}", text, finding.step or 0)

    def on_action(self, event: dict[str, Any]) -> None:
        self.writer.add_text(
            "actions", f"{event['action']} on `{event['finding']}`", event["step"] or 0
        )

    def on_eval(self, record: Record) -> None:
        self._scalars(record)

    def on_run_end(self, status: str) -> None:
        self.writer.close()


class ProgressSink:
    """A Rich progress bar with lr, loss and it/s; prints the scheduler line and eval results."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.task: Any = None

    def on_run_start(self, info: dict[str, Any], control: TrainControl) -> None:
        self.console.print(info["scheduler_line"])
        told, blocks = info.get("train_samples_in_config"), info["train_blocks"]
        if told is not None and told != blocks:
            self.console.print(
                f"[Data] {blocks:,} training blocks; the config's train_samples says {told:,} "
                "(what `doctor check` planned with)."
            )
        for finding in info["preflight"]:
            self.console.print(
                f"[Check] {finding.severity.value} {finding.code} {finding.id}: {finding.message}"
            )
        start = info.get("resumed_from_step") or 0
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=info["planned_steps"], completed=start, stats=""
        )

    def on_record(self, record: Record) -> None:
        loss = record.get(LOSS, math.nan)
        stats = f"lr {record.get(LR, 0.0):.2e} · loss {loss:.4f}"
        if STEPS_PER_S in record:
            stats += f" · {record[STEPS_PER_S]:.2f} it/s"
        self.progress.update(self.task, completed=record[STEP], stats=stats)

    def on_eval(self, record: Record) -> None:
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in record.items() if k != STEP and isinstance(v, float)
        )
        self.progress.console.print(f"[Eval] step {record[STEP]}: {shown}", markup=False)

    def on_run_end(self, status: str) -> None:
        self.progress.stop()
