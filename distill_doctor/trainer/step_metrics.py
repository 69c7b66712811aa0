"""The numbers the loop hands to observers: a `Record` per optimizer step, one per eval, and
the run's software versions. Keys are `distill_doctor.records`' names."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

import torch

from distill_doctor import records as keys
from distill_doctor.records import Record

if TYPE_CHECKING:  # the loop imports this module
    from distill_doctor.trainer.loop import Run

LOSS_COMPONENTS = ("ce", "kd", "feature", "attention")
TEACHER_CE = "teacher_ce"


def step_record(run: Run, metrics: dict, state: Any, seconds: float, tokens: int) -> Record:
    """`metrics` from the accumulated step (loss parts summed over micro-batches, grad_norm,
    lr, valid_tokens, maybe loss_scale); `state` is the TrainState after the step."""
    record: Record = {
        keys.STEP: state.step,
        keys.EPOCH: state.epoch + state.batch_in_epoch / run.n_batches,
        keys.LR: metrics["lr"],
        keys.LOSS: metrics["loss"],
        keys.GRAD_NORM: metrics["grad_norm"],
        keys.VALID_TOKENS: metrics["valid_tokens"],
        keys.STEPS_PER_S: 1.0 / seconds,
        keys.TOKENS_PER_S: tokens / seconds,
        keys.PLANNED_STEPS: run.planned,
        keys.SCHEDULER_STEPS: run.scheduler_steps,
        "all_masked_batches": state.all_masked_batches,  # batches with no label to learn from
    }
    for name in LOSS_COMPONENTS:
        if name in metrics:
            record[keys.LOSS_PREFIX + name] = metrics[name]
    with torch.no_grad():  # float64 so the checksum moves even when a step is tiny
        record[keys.CHECKSUM] = float(sum(p.double().sum() for p in run.student.parameters()))
    for key in ("loss_scale", keys.MICRO_STEP, "update_skipped"):
        if key in metrics:
            record[key] = metrics[key]
    record.update(run.memory.read())
    return record


def eval_record(step: int, results: dict[str, float]) -> Record:
    """eval_<name> for the student's metrics. The frozen teacher's CE stays `teacher_ce`: it
    is constant by design, and detectors rightly flag an `eval_` metric that never moves."""
    record: Record = {keys.STEP: step}
    for name, value in results.items():
        record[name if name == TEACHER_CE else keys.EVAL_PREFIX + name] = value
    return record


def versions() -> dict[str, str]:
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
