"""Evaluation on the held-out split: every loss component as a per-token mean over the whole
split, the teacher's CE for reference, and a perplexity from the student's CE alone.

Perplexity is exp(CE) and nothing else: exp() of a combined loss (CE + KD + feature ...) is
not a perplexity, and is how the seed reported "485 million". CE is clamped at 700 before
exp() (exp(700) ~ 1e304, still a float), so an untrained or diverged model gives a huge but
finite number instead of an overflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import torch

from distill_doctor.trainer.losses import (
    ce_sum,
    count_valid_tokens,
    gather_valid,
    valid_positions,
)

MAX_LOG_PPL = 700.0


def perplexity(ce: float) -> float:
    """exp(CE), overflow-safe (see the module docstring)."""
    return math.exp(min(ce, MAX_LOG_PPL)) if math.isfinite(ce) else math.inf


def lm_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token CE of a model's logits over the valid label positions."""
    mask = valid_positions(labels)
    return ce_sum(gather_valid(logits, mask), labels[:, 1:][mask])


@torch.no_grad()
def evaluate(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    loss_fn: Any,
    batches: Iterable[dict[str, torch.Tensor]],
    forward: Callable[[torch.nn.Module, dict], Any],
    autocast: Callable[[], AbstractContextManager],
) -> dict[str, float]:
    """{"loss", "ce", "kd", ..., "ppl", "teacher_ce"} over the eval batches (per-token means).

    `forward(model, batch)` runs a model the way training does (hidden states / attentions as
    the loss needs them); `autocast()` is the training precision context.
    """
    batches = list(batches)
    denominator = max(sum(count_valid_tokens(b["labels"]) for b in batches), 1)
    was_training = student.training
    student.eval()
    totals: dict[str, float] = {}
    for batch in batches:
        with autocast():
            teacher_out = forward(teacher, batch)
            student_out = forward(student, batch)
            parts = loss_fn(student_out, teacher_out, batch["labels"], denominator)
            parts["ce"] = lm_ce(student_out.logits, batch["labels"]) / denominator
            parts["teacher_ce"] = lm_ce(teacher_out.logits, batch["labels"]) / denominator
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    student.train(was_training)
    totals["ppl"] = perplexity(totals["ce"])
    return totals
