"""Weights & Biases run configs (`config.yaml` in a run's files): every key wraps its value,

    learning_rate: {desc: null, value: 3.0e-05}
    _wandb: {desc: null, value: {cli_version: ...}}

so the values are unwrapped and read in the dialect of the run that logged them (usually a
Hugging Face Trainer, which logs all of its TrainingArguments).
"""

from __future__ import annotations

from typing import Any

NAME = "wandb"
WRAPPER_KEYS = ({"desc", "value"}, {"value"})


def is_wrapped(value: Any) -> bool:
    return isinstance(value, dict) and set(value) in WRAPPER_KEYS


def score(data: dict[str, Any]) -> int:
    wrapped = sum(is_wrapped(value) for value in data.values())
    return 50 if data and wrapped >= max(1, len(data) // 2) else 0


def unwrap(data: dict[str, Any]) -> dict[str, Any]:
    """The run's own config: W&B's wrappers off, its `_wandb` bookkeeping dropped."""
    return {
        key: value["value"] if is_wrapped(value) else value
        for key, value in data.items()
        if key != "_wandb" and key != "wandb_version"
    }
