"""The trainer's LambdaLR follows the shared schedule shape, step by step."""

import pytest
import torch

from distill_doctor.config.schema import TrainConfig
from distill_doctor.trainer.schedule import build_scheduler, warmup_summary


def lrs_of(cfg: TrainConfig, total_steps: int, steps_run: int) -> list[float]:
    """The LR each optimizer step used, then the LR left after the last step."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, cfg, total_steps)
    lrs = []
    for _ in range(steps_run):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs + [optimizer.param_groups[0]["lr"]]


def test_linear_warmup_then_decay_to_the_floor():
    cfg = TrainConfig(lr_scheduler="linear", warmup_steps=4, min_lr_ratio=0.1)
    lrs = lrs_of(cfg, total_steps=14, steps_run=14)
    assert lrs[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the decay
    assert lrs[-1] == pytest.approx(0.1)  # ends at the configured final LR


def test_cosine_decay_and_constant():
    cosine = lrs_of(TrainConfig(lr_scheduler="cosine", min_lr_ratio=0.0), 10, 10)
    assert cosine[5] == pytest.approx(0.5) and cosine[2] > 1 - 2 / 10
    assert cosine[-1] == pytest.approx(0.0)
    constant = lrs_of(TrainConfig(lr_scheduler="constant", warmup_steps=2), 10, 10)
    assert constant[2:] == [1.0] * 9


def test_scheduler_told_too_few_steps_parks_at_zero():
    # a scheduler told 10 steps in a 40-step run: LR 0 for the last 30 (the seed's symptom)
    lrs = lrs_of(TrainConfig(lr_scheduler="linear", warmup_steps=2), total_steps=10, steps_run=40)
    assert max(lrs) == pytest.approx(1.0)
    assert lrs[10:40] == [0.0] * 30


def test_warmup_summary_line():
    assert warmup_summary(293, 500) == "[Scheduler] Optimizer steps: 293 · warmup 500 (170.6%)"
