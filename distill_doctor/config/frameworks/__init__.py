"""The training frameworks' own config dialects, each translated into TrainingArguments' terms.

One module per framework, each with `NAME` and `translate(data) -> Translation`, imported only
for a file in its dialect. How strongly a file's keys say "this framework" is each one's score
in `markers` (0 is not at all); the dialect with the highest score wins
(`config.dialects.detect_dialect`); `--dialect NAME` overrides. W&B's wrapper is told by
`wandb.score`.
"""

from __future__ import annotations

from typing import Any


def section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested mapping, or an empty one when the key is missing or holds something else."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def count(keys: frozenset[str], data: dict[str, Any]) -> int:
    return sum(key in data for key in keys)
