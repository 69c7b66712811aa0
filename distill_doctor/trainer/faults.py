"""`doctor train --inject FAULT[@STEP]`: put a known fault into a real run, on purpose, to show
(and test, and benchmark) that the watchdog catches it. Each fault is what a real script gets
wrong, reproduced with the smallest change to the bundled trainer:

    scheduler-per-microbatch  scheduler.step() after every micro-batch (the seed's bug)
    scheduler-too-long        the scheduler told 16x the optimizer steps that run
    nan-loss                  the loss of one micro-batch is NaN at STEP
    all-masked-batch          every label of the accumulated batch at STEP is -100
    frozen-student            the optimizer is built over copies, not the student's weights
    teacher-train-mode        the teacher left in train mode with requires_grad on
    lr-too-high               the learning rate 100x the config's
    memory-leak               each step's logits kept in a list (`outputs.append(out.logits)`)

Faults hook into the run from outside (a module hook, a rebuilt optimizer or scheduler), so
the loop itself stays the correct one; only the masked batch needs the loop's one call.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from distill_doctor.errors import InputError

if TYPE_CHECKING:  # `doctor train --help` lists the faults without loading pydantic
    from distill_doctor.config.schema import TrainConfig

FAULTS = {
    "scheduler-per-microbatch": "scheduler.step() after every micro-batch",
    "scheduler-too-long": "the scheduler told 16x the real optimizer steps",
    "nan-loss": "a NaN loss at a chosen step",
    "all-masked-batch": "a batch whose labels are all -100",
    "frozen-student": "optimizer built over parameters that are not the student's",
    "teacher-train-mode": "teacher left in train mode with grads on",
    "lr-too-high": "LR 100x too high",
    "memory-leak": "tensors kept alive step after step",
}
# What the watchdog is expected to call each fault (benchmarks/detection.py checks it).
CAUGHT_AS = {
    "scheduler-per-microbatch": ("scheduler-stepped-per-microbatch",),
    "scheduler-too-long": ("scheduler-steps-mismatch",),
    "nan-loss": ("nonfinite-loss",),
    "all-masked-batch": ("all-labels-masked",),
    "frozen-student": ("params-frozen",),
    "teacher-train-mode": ("teacher-not-frozen",),
    "lr-too-high": ("loss-divergence", "grad-explosion"),
    "memory-leak": ("memory-growth",),
}
DEFAULT_STEP = 10  # for the faults that happen at one step
SCHEDULE_OVERSHOOT = 16
LR_FACTOR = 100.0


@dataclass
class Faults:
    names: set[str]
    step: int = DEFAULT_STEP
    kept: list[Any] = field(default_factory=list)  # memory-leak: what is never let go
    current_step: int = 0  # the optimizer step the loop is running (it tells `batch`)
    micro_batches: int = 0
    run: Any = None

    @classmethod
    def parse(cls, items: list[str]) -> Faults | None:
        if not items:
            return None
        names, step = set(), DEFAULT_STEP
        for item in items:
            name, _, at = item.partition("@")
            if name not in FAULTS:
                known = ", ".join(FAULTS)
                raise InputError(f"--inject {item!r}: unknown fault; known faults: {known}.")
            if at:
                if not at.isdigit() or int(at) < 1:
                    raise InputError(f"--inject {item!r}: STEP must be a step number >= 1.")
                step = int(at)
            names.add(name)
        return cls(names, step)

    def config(self, cfg: TrainConfig) -> TrainConfig:
        if "lr-too-high" in self.names:
            return cfg.model_copy(update={"learning_rate": cfg.learning_rate * LR_FACTOR})
        return cfg

    def apply(self, run: Any) -> None:
        """Put the faults into a freshly set-up run (see `trainer.loop.setup`)."""
        import torch

        from distill_doctor.trainer.schedule import build_scheduler

        accumulation = run.cfg.gradient_accumulation_steps
        if "scheduler-per-microbatch" in self.names and accumulation == 1:
            raise InputError(
                "--inject scheduler-per-microbatch needs gradient accumulation (one micro-batch "
                "per step is one scheduler step either way): add --set "
                "gradient_accumulation_steps=4."
            )

        if "frozen-student" in self.names:
            copies = [copy.deepcopy(p) for p in run.params]
            run.optimizer = torch.optim.AdamW(copies, lr=run.cfg.learning_rate)
            run.params = copies
        if "scheduler-too-long" in self.names or "frozen-student" in self.names:
            if "scheduler-too-long" in self.names:
                run.scheduler_steps = SCHEDULE_OVERSHOOT * run.planned
            run.scheduler = build_scheduler(run.optimizer, run.cfg, run.scheduler_steps)
        if "teacher-train-mode" in self.names:
            run.teacher.train()
            run.teacher.requires_grad_(True)
        run.loss.register_forward_hook(self._after_loss)
        run.faults = self
        self.run = run

    def _after_loss(self, _module: Any, inputs: Any, parts: dict) -> dict | None:
        import torch

        if not torch.is_grad_enabled():  # an evaluation's forward: faults live in training
            return None
        run = self.run
        step = self.current_step  # the optimizer step this micro-batch belongs to
        if "scheduler-per-microbatch" in self.names:
            self.micro_batches += 1
            if self.micro_batches % run.cfg.gradient_accumulation_steps:  # the loop: the last
                with warnings.catch_warnings():  # torch's "step order" warning: the bug itself
                    warnings.simplefilter("ignore")
                    run.scheduler.step()
        if "memory-leak" in self.names:
            self.kept.append(inputs[0].logits)  # the student's [B, L, V] logits, never freed
        if "nan-loss" in self.names and step == self.step:
            return {**parts, "loss": parts["loss"] * float("nan")}
        return None

    def batch(self, step: int, group: list[dict]) -> list[dict]:
        """The loop's call before each optimizer step: which step runs (for the faults timed
        by step), and for all-masked-batch the batch of `step` with every label ignored."""
        self.current_step = step
        if "all-masked-batch" not in self.names or step != self.step:
            return group
        return [
            {**batch, "labels": batch["labels"].new_full(batch["labels"].shape, -100)}
            for batch in group
        ]
