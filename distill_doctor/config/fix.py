"""`doctor check --fix`: the findings' patches applied to the original file, in its dialect.

Only the keys a rule fixes change; every other key, its order and its value stay as written.
A patch names canonical keys; a Hugging Face file gets them under its own names (`batch_size`
becomes `per_device_train_batch_size`, a warmup given as `warmup_ratio` stays a ratio). A key
the dialect cannot express (a TrainingArguments file has no `kd_top_k`) is reported as skipped.
The input file is never overwritten: the result goes to a new path.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_doctor.config.context import LoadedConfig
from distill_doctor.config.hf import SAME_MEANING
from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, sort_findings
from distill_doctor.rules.base import CheckContext

# Canonical key -> TrainingArguments key, for keys a patch may add to an HF file.
HF_NAMES = {key: hf_key for hf_key, key in SAME_MEANING.items() if hf_key != "max_seq_length"}
HF_NAMES.update(
    max_steps="max_steps",
    warmup_steps="warmup_steps",
    eval_steps="eval_steps",
    lr_scheduler="lr_scheduler_type",
)


@dataclass
class FixResult:
    data: dict[str, Any]  # the corrected JSON object
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # file key -> (old, new)
    skipped: list[str] = field(default_factory=list)  # why each unapplied patch was not applied


@dataclass(frozen=True)
class FixOutcome:
    """What `--fix` did: the file it wrote, the changes, and the findings a re-check of the
    written file still reports."""

    output: Path
    result: FixResult
    remaining: list[Finding]


def apply_fixes(findings: list[Finding], ctx: CheckContext, loaded: LoadedConfig) -> FixResult:
    """Apply every finding's patch, worst finding first; a key already patched keeps the first
    (worst finding's) value, and a later conflicting patch is reported as skipped."""
    result = FixResult(data=copy.deepcopy(loaded.data))
    patched_by: dict[str, str] = {}
    for finding in sort_findings(findings):
        for key, value in (finding.patch or {}).items():
            if key in patched_by:
                result.skipped.append(
                    f"{key} (from {finding.id}): already set by {patched_by[key]}"
                )
                continue
            patched_by[key] = finding.id
            if loaded.dialect == "hf":
                apply_hf(result, key, value, ctx, loaded)
            else:
                set_key(result, loaded.parsed.key_names.get(key, key), value)
    return result


def set_key(result: FixResult, file_key: str, value: Any) -> None:
    """Set a key where the file has it: "optim.batch_size" inside its section."""
    *section, name = file_key.split(".")
    holder = result.data[section[0]] if section else result.data
    old = holder.get(name)
    if old != value:
        holder[name] = value
        result.changes[file_key] = (old, value)


def apply_hf(
    result: FixResult, key: str, value: Any, ctx: CheckContext, loaded: LoadedConfig
) -> None:
    file_key = loaded.parsed.key_names.get(key) or HF_NAMES.get(key)
    if file_key is None:
        result.skipped.append(
            f"{key}: a TrainingArguments file has no such setting; set it in your training script"
        )
        return
    if key == "warmup_steps" and loaded.parsed.warmup_ratio is not None:
        value = warmup_as_ratio(value, ctx.planned_steps)
    elif key == "max_steps" and value is None:
        value = -1  # TrainingArguments' "no cap"
    elif key == "eval_steps":
        set_key(result, eval_strategy_key(loaded.data), "steps")
    set_key(result, file_key, value)


def warmup_as_ratio(steps: int, planned: int | None) -> float:
    """The shortest ratio that TrainingArguments turns back into exactly `steps`
    (it takes ceil(planned * ratio))."""
    if not planned:
        raise InputError(
            "cannot express the fixed warmup as a ratio without the dataset size; "
            "pass --train-samples N."
        )
    # Round down, not to nearest: a ratio a hair above steps / planned gives one step more, and
    # so can the exact quotient once float multiplication rounds it up (0.81505 x 80,000).
    for digits in range(2, 16):
        top = math.floor(steps / planned * 10**digits)
        for ratio in (top / 10**digits, (top - 1) / 10**digits):
            if ratio >= 0 and math.ceil(planned * ratio) == steps:
                return ratio
    return steps / planned  # not reached: at 15 digits (top - 1) lies well inside the interval


def eval_strategy_key(data: dict[str, Any]) -> str:
    return "evaluation_strategy" if "evaluation_strategy" in data else "eval_strategy"


def write_fixed(result: FixResult, output: Path, source: Path) -> None:
    """Write the corrected config; refuse to overwrite the config being checked."""
    if output.exists() and output.resolve() == source.resolve():
        raise InputError(
            f"--output {output} is the input file; doctor check never overwrites "
            "the config it checks. Give a new path and compare the two."
        )
    if output.is_dir():
        raise InputError(f"--output {output} is a directory; give a file path.")
    if not output.parent.exists():
        raise InputError(f"--output {output}: the folder {output.parent} does not exist.")
    output.write_text(json.dumps(result.data, indent=2) + "\n", encoding="utf-8")
