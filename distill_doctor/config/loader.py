"""Native configs: reading a JSON object, then validation into `TrainConfig`.

Every problem becomes an `InputError` whose message names the file, the key and the fix;
validation collects all the errors of a file and reports them together.
"""

from __future__ import annotations

import difflib
import json
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from distill_doctor.config.native import flatten_sections
from distill_doctor.config.reader import read_document
from distill_doctor.config.schema import TrainConfig, config_keys
from distill_doctor.errors import InputError


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The top-level JSON object of a file, or an InputError that says exactly what is wrong."""
    return read_document(path, "json").data


# What other training scripts call our keys: spelling distance cannot see that "lr" means
# learning_rate (the seed's own write-up asks for a `gradient_clip_norm`).
SYNONYMS = {
    "lr": "learning_rate",
    "num_epochs": "epochs",
    "num_train_epochs": "epochs",
    "grad_accum": "gradient_accumulation_steps",
    "accumulation_steps": "gradient_accumulation_steps",
    "micro_batch_size": "batch_size",
    "max_seq_length": "max_length",
    "seq_len": "max_length",
    "block_size": "max_length",
    "kd_temperature": "temperature",
    "top_k": "kd_top_k",
    "gradient_clip_norm": "max_grad_norm",
    "clip_grad_norm": "max_grad_norm",
    "grad_clip": "max_grad_norm",
    "eval_interval": "eval_steps",
    "total_steps": "num_training_steps",
    "scheduler": "lr_scheduler",
    "lr_scheduler_type": "lr_scheduler",
}


LISTED_PROBLEMS = 20


def did_you_mean(key: str, known: list[str]) -> str:
    """A suggestion only between names that mean the same thing: a known synonym, or a
    misspelling of the same words (`lerning_rate`), never a different word that looks alike
    (`lora_rank` is not `local_rank`)."""
    synonym = SYNONYMS.get(key.lower())
    if synonym in known:
        return f" (did you mean {synonym!r}?)"
    close = [
        name
        for name in difflib.get_close_matches(key, known, n=3, cutoff=0.75)
        if same_word(key.lower().split("_")[0], name.split("_")[0])
    ]
    return f" (did you mean {close[0]!r}?)" if close else ""


def same_word(typed: str, known: str) -> bool:
    """`lerning` is `learning` misspelt; `lora` is not `local`."""
    return difflib.SequenceMatcher(None, typed, known).ratio() >= 0.8


def format_validation_error(
    source: str, err: ValidationError, known: list[str], key_names: dict[str, str] | None = None
) -> str:
    """One message listing every invalid key: its location, what was wrong, what was given.

    `key_names` renames canonical keys to the file's own spelling (a Hugging Face file says
    `per_device_train_batch_size` where the schema says `batch_size`).
    """
    key_names = key_names or {}
    count = err.error_count()
    lines = [f"{source}: {count} invalid config value(s):"]
    # A generated or corrupted file may hold 700,000 stray keys: list enough to act on.
    for item in islice(err.errors(), LISTED_PROBLEMS):
        parts = [str(part) for part in item["loc"]]
        if parts:
            parts[0] = key_names.get(parts[0], parts[0])
        loc = ".".join(parts) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown key{did_you_mean(str(item['loc'][0]), known)}")
        else:
            given = json.dumps(item.get("input"), default=str)[:60]
            lines.append(f"  - {loc}: {item['msg']} (got {given})")
    if count > LISTED_PROBLEMS:
        lines.append(f"  ... and {count - LISTED_PROBLEMS:,} more, not listed")
    return "\n".join(lines)


def validate_config(
    data: dict[str, Any], source: str, key_names: dict[str, str] | None = None
) -> TrainConfig:
    """Validate canonical keys as JSON, strictly: "2" is not a batch size and 1 is not `true`,
    so a quoted number or a wrong type is reported rather than silently coerced."""
    known = config_keys()
    fields = set(known)
    unknown = [key for key in data if key not in fields]
    if len(unknown) > LISTED_PROBLEMS:
        # Thousands of stray keys (a generated or corrupted file): name a few, count the rest,
        # without asking the validator for an error object per key.
        listed = "\n".join(
            f"  - {key_names.get(key, key) if key_names else key}: unknown key"
            for key in unknown[:LISTED_PROBLEMS]
        )
        raise InputError(
            f"{source}: {len(unknown):,} unknown keys, for example:\n{listed}\n"
            f"  ... and {len(unknown) - LISTED_PROBLEMS:,} more, not listed. "
            "Is this a training config?"
        )
    try:
        return TrainConfig.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as err:
        raise InputError(format_validation_error(source, err, known, key_names)) from None


def parse_native(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a native (bundled trainer / seed-style) config mapping, flat or in sections."""
    flat, paths = flatten_sections(data, source)
    return validate_config(flat, source, paths)


def load_native(path: str | Path) -> TrainConfig:
    return parse_native(read_json_object(path), str(path))
