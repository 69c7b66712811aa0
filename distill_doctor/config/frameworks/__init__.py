"""The training frameworks' own config dialects, each translated into TrainingArguments' terms.

One module per framework, each with `NAME`, `score(data) -> int` (how strongly the file's keys
say "this framework": 0 is not at all) and `translate(data) -> Translation`. The dialect with
the highest score wins (`config.dialects.detect_dialect`); `--dialect NAME` overrides.
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
