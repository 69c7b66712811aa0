"""The LR schedule's shape as a multiplier of the peak LR, after `step` scheduler steps.

The same shapes as the bundled trainer and Hugging Face's `get_*_schedule_with_warmup`: linear
warmup from 0, then linear or cosine decay to `min_lr_ratio` of the peak at `total` steps.
Past `total` the LR stays at its floor (Hugging Face's cosine would climb back up; its linear
schedule stays at 0 as here).
"""

from __future__ import annotations

import math


def lr_multiplier(step: int, total: int, warmup: int, shape: str, min_lr_ratio: float) -> float:
    """LR / peak LR for the optimizer step taken after `step` scheduler steps."""
    if step < warmup:
        return step / max(1, warmup)
    if shape == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if shape == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        decay = 1.0 - progress
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay
