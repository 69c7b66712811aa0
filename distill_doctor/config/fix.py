"""`doctor check --fix`: the findings' patches applied to the original file, in its dialect.

Only the keys a rule fixes change; every other key, its order and its value stay as written.
A patch names canonical keys; a Hugging Face file gets them under its own names (`batch_size`
becomes `per_device_train_batch_size`, a warmup given as `warmup_ratio` stays a ratio). A key
the dialect cannot express (a TrainingArguments file has no `kd_top_k`) is reported as skipped.
The input file is never overwritten: the result goes to a new path, refused when it is the
input under another name (a hard or symbolic link), written to a temporary file beside it and
renamed into place, so that a full disk or a killed process never leaves half a config.
Only JSON files in the native and Hugging Face/TRL dialects are rewritten: a YAML file's
comments and layout would be lost, so its fixes are shown for the user to apply.
"""

from __future__ import annotations

import copy
import json
import math
import os
import stat
import tempfile
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


HF_DIALECTS = ("hf", "trl")
FIXABLE_DIALECTS = ("native", *HF_DIALECTS)


def check_fixable(loaded: LoadedConfig) -> None:
    """--fix rewrites JSON configs of the dialects it can express patches in."""
    if loaded.document.format != "json" or loaded.dialect not in FIXABLE_DIALECTS:
        raise InputError(
            f"--fix rewrites native and Hugging Face/TRL JSON configs; {loaded.path} is a "
            f"{loaded.dialect} {loaded.document.format.upper()} file. Run without --fix and "
            "apply each finding's fix by hand (its comments and layout stay yours)."
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
            if loaded.dialect in HF_DIALECTS:
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
    """Write the corrected config; never over the config being checked, never half a file."""
    check_output(output, source)
    text = json.dumps(result.data, indent=2) + "\n"
    try:
        write_atomically(output, text)
    except OSError as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise InputError(
            f"--output {output}: cannot write there ({reason}); give a writable path."
        ) from None


def check_output(output: Path, source: Path) -> None:
    """Refuse an output that is the input (by inode: a hard link or symlink counts), a
    folder, a device, or a path whose folder does not exist."""
    try:
        info = os.stat(output)
    except FileNotFoundError:
        info = None
    except OSError as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise InputError(f"--output {output}: cannot use this path ({reason}).") from None
    if info is not None:
        if str(source) != "-" and os.path.samefile(output, source):
            raise InputError(
                f"--output {output} is the input file (the same file on disk); doctor check "
                "never overwrites the config it checks. Give a new path and compare the two."
            )
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"--output {output} is a directory; give a file path.")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(
                f"--output {output} is not a regular file (a device?); give a file path."
            )
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: the folder {output.parent} does not exist.")


def write_atomically(output: Path, text: str) -> None:
    """Write beside the target, flush to disk, then rename over it in one step."""
    handle = tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        dir=output.parent,
        prefix=f".{output.name}.",
        suffix=".tmp",
        delete=False,
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)  # as a plainly created file would be
        os.replace(handle.name, output)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
