"""Step arithmetic shared by the trainer and the config rules, so both count the same way.

The trainer takes an optimizer step every `gradient_accumulation_steps` micro-batches and once
more at the end of an epoch for the leftover micro-batches (so no data is dropped): an epoch
of B batches is ceil(B / accumulation) optimizer steps. `max_steps` caps the total.
"""

from __future__ import annotations

import math


def batches_per_epoch(train_samples: int, batch_size: int) -> int:
    """Micro-batches per epoch; the last, partial batch is kept (drop_last=False)."""
    return math.ceil(train_samples / batch_size)


def optimizer_steps(
    train_samples: int,
    batch_size: int,
    gradient_accumulation_steps: int,
    epochs: float,
    max_steps: int | None = None,
) -> int:
    """Optimizer steps the trainer really runs (what the LR scheduler must be told)."""
    batches = batches_per_epoch(train_samples, batch_size)
    per_epoch = math.ceil(batches / gradient_accumulation_steps)
    whole_epochs = int(epochs)
    steps = per_epoch * whole_epochs
    partial = epochs - whole_epochs
    if partial > 0:
        steps += math.ceil(math.ceil(batches * partial) / gradient_accumulation_steps)
    if max_steps is not None:
        steps = min(steps, max_steps)
    return max(steps, 1)
