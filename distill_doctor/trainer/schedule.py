"""The learning-rate schedule as a `LambdaLR`, stepped once per optimizer step by the loop.

The shape (warmup from 0, then linear / cosine decay to `min_lr_ratio` of the peak, or
constant) is `distill_doctor.rules.lr_schedule.lr_multiplier`: the very function `doctor check`
reasons about, so the linter and the trainer cannot disagree on what a config does.
"""

from __future__ import annotations

import torch

from distill_doctor.config.schema import TrainConfig
from distill_doctor.rules.lr_schedule import lr_multiplier


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over `total_steps` scheduler steps (the steps the config tells it)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_multiplier(
            step, total_steps, cfg.warmup_steps, cfg.lr_scheduler, cfg.min_lr_ratio
        ),
    )


def warmup_summary(planned_steps: int, warmup_steps: int) -> str:
    """The line the seed's checklist asks for: `Optimizer steps: N · warmup M (x%)`."""
    share = 100.0 * warmup_steps / max(planned_steps, 1)
    return f"[Scheduler] Optimizer steps: {planned_steps} · warmup {warmup_steps} ({share:.1f}%)"
