"""The torch side of the live checks: read the numbers a running process has (call counts,
the optimizer's parameters, the teacher's state, a dry run of the real scheduler) and hand
them to `checks`, which judges them. Imported by the adapters only, never by the linter.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch

from distill_doctor.findings import Finding
from distill_doctor.watchdog import checks

# A dry run steps a copy of the scheduler once per planned optimizer step; beyond this many a
# run is judged on the steps stepped (an LR at 0 early still shows; the end does not).
DRY_RUN_MAX_STEPS = 200_000


def inner_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside wrappers (accelerate's AcceleratedOptimizer, itself an
    Optimizer subclass, holds it as `.optimizer`)."""
    while getattr(optimizer, "optimizer", optimizer) is not optimizer:
        optimizer = optimizer.optimizer
    return optimizer


def inner_scheduler(scheduler: Any) -> Any:
    while hasattr(scheduler, "scheduler") and not hasattr(scheduler, "last_epoch"):
        scheduler = scheduler.scheduler
    return scheduler


class StepCounter:
    """optimizer.step() calls (a post-hook: no wrapping, so torch's scheduler sees the step
    it patched) against scheduler.step() calls (its `last_epoch` counter: nothing patched,
    nothing added to its state_dict)."""

    def __init__(self, optimizer: Any, scheduler: Any) -> None:
        self.optimizer = inner_optimizer(optimizer)
        self.scheduler = inner_scheduler(scheduler)
        self.optimizer_steps = 0
        self.start_epoch = getattr(self.scheduler, "last_epoch", 0)
        self.handle = self.optimizer.register_step_post_hook(self._count)

    def _count(self, *_: Any) -> None:
        self.optimizer_steps += 1

    @property
    def scheduler_steps(self) -> int:
        return getattr(self.scheduler, "last_epoch", self.start_epoch) - self.start_epoch

    def check(self, step: int, scheduler_total: int | None) -> Finding | None:
        return checks.scheduler_call_ratio(
            self.optimizer_steps, self.scheduler_steps, step, scheduler_total
        )

    def close(self) -> None:
        self.handle.remove()


def scheduler_dry_run(optimizer: Any, scheduler: Any, steps: int) -> list[float] | None:
    """The LR of the first param group at each of the next `steps` optimizer steps, from a copy
    of the real scheduler stepped over a stand-in optimizer (the real one, and the model, are
    never touched). None when the scheduler cannot be dry-run (it needs a metric)."""
    scheduler = inner_scheduler(scheduler)
    if scheduler is None or not hasattr(scheduler, "last_epoch"):
        return None
    # The optimizer the scheduler itself holds: the one the copy must not drag along.
    optimizer = inner_optimizer(getattr(scheduler, "optimizer", optimizer))
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return None
    stand_in = torch.optim.SGD(
        [
            {**{k: v for k, v in group.items() if k != "params"}, "params": [torch.zeros(1)]}
            for group in optimizer.param_groups
        ],
        lr=optimizer.param_groups[0]["lr"],
    )
    try:
        twin = copy.deepcopy(scheduler, memo={id(optimizer): stand_in})
    except Exception:  # noqa: BLE001 - an exotic scheduler that cannot be copied: no prediction
        return None
    lrs = [float(stand_in.param_groups[0]["lr"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": on purpose
        for _ in range(min(steps, DRY_RUN_MAX_STEPS) - 1):
            twin.step()
            lrs.append(float(stand_in.param_groups[0]["lr"]))
    return lrs


def optimizer_coverage(optimizer: Any, student: Any, teacher: Any, step: int) -> Finding | None:
    held = {id(p) for group in inner_optimizer(optimizer).param_groups for p in group["params"]}
    trainable = [p for p in student.parameters() if p.requires_grad]
    missing = [p for p in trainable if id(p) not in held]
    weights = sum(p.numel() for p in trainable) or 1
    teacher_inside = sum(id(p) in held for p in teacher.parameters()) if teacher is not None else 0
    return checks.optimizer_coverage(
        len(trainable),
        len(missing),
        sum(p.numel() for p in missing) / weights,
        teacher_inside,
        step,
    )


def checksum(model: Any) -> float:
    with torch.no_grad():
        return float(sum(p.detach().double().sum() for p in model.parameters()))


class TeacherProbe:
    """Train mode and requires_grad at once; the weights' checksum at each call after."""

    def __init__(self, teacher: Any) -> None:
        self.teacher = teacher
        self.start = checksum(teacher)

    def check(self, step: int, weights_too: bool = True) -> Finding | None:
        drift = None
        if weights_too:
            now = checksum(self.teacher)
            moved = abs(now - self.start)
            if moved > 1e-9 * max(abs(self.start), 1.0) and math.isfinite(now):
                drift = moved
        grad_on = sum(p.requires_grad for p in self.teacher.parameters())
        return checks.teacher_state(self.teacher.training, grad_on, drift, step)


class ParamSample:
    """A fixed sample of the student's weights (up to `per_tensor` entries of each trainable
    tensor): the update-to-weight ratio ||w_t - w_t-1|| / ||w_t|| on it costs a few small
    gathers per step instead of a copy of the model."""

    def __init__(self, model: Any, per_tensor: int = 64, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.picks = []
        for p in model.parameters():
            if p.requires_grad and p.numel():
                count = min(per_tensor, p.numel())
                index = torch.randperm(p.numel(), generator=generator)[:count]
                self.picks.append((p, index.to(p.device)))
        self.previous: torch.Tensor | None = None

    def update_ratio(self) -> float | None:
        if not self.picks:
            return None
        with torch.no_grad():
            now = torch.cat([p.detach().reshape(-1)[ix].double() for p, ix in self.picks])
        previous, self.previous = self.previous, now
        if previous is None:
            return None
        return float((now - previous).norm() / now.norm().clamp(min=1e-30))
