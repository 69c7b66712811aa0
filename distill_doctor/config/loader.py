"""Reading config files: JSON with precise errors, then validation into `TrainConfig`.

Every problem becomes an `InputError` whose message names the file, the key and the fix;
validation collects all the errors of a file and reports them together.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from distill_doctor.config.native import flatten_sections
from distill_doctor.config.schema import TrainConfig, config_keys
from distill_doctor.errors import InputError

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config is small; a bigger file is not a config
JSON_TYPE_NAMES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The top-level JSON object of a file, or an InputError that says exactly what is wrong."""
    return parse_json_object(read_config_text(path), path)


def read_config_text(path: str | Path) -> str:
    """The text of a config file; a missing, huge, binary or empty file is an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give the path of a JSON config file.")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise InputError(f"{path}: {path.stat().st_size:,} bytes is too large for a config file.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{path}: not UTF-8 text (byte {err.start}); is this a binary file?"
        ) from None
    if "\x00" in text:
        raise InputError(f"{path}: contains NUL bytes; is this a binary file?")
    if not text.strip():
        raise InputError(f"{path}: the file is empty; expected a JSON object of config keys.")
    return text


def parse_json_object(text: str, path: str | Path) -> dict[str, Any]:
    """The top-level JSON object of a config text, with line and column on a syntax error."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}."
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: the top level is a JSON {JSON_TYPE_NAMES.get(type(data), 'value')}; "
            "expected an object of config keys."
        )
    return data


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


def did_you_mean(key: str, known: list[str]) -> str:
    synonym = SYNONYMS.get(key.lower())
    if synonym in known:
        return f" (did you mean {synonym!r}?)"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_validation_error(
    source: str, err: ValidationError, known: list[str], key_names: dict[str, str] | None = None
) -> str:
    """One message listing every invalid key: its location, what was wrong, what was given.

    `key_names` renames canonical keys to the file's own spelling (a Hugging Face file says
    `per_device_train_batch_size` where the schema says `batch_size`).
    """
    key_names = key_names or {}
    lines = [f"{source}: {err.error_count()} invalid config value(s):"]
    for item in err.errors():
        parts = [str(part) for part in item["loc"]]
        if parts:
            parts[0] = key_names.get(parts[0], parts[0])
        loc = ".".join(parts) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"  - {loc}: unknown key{did_you_mean(str(item['loc'][0]), known)}")
        else:
            given = json.dumps(item.get("input"), default=str)[:60]
            lines.append(f"  - {loc}: {item['msg']} (got {given})")
    return "\n".join(lines)


def validate_config(
    data: dict[str, Any], source: str, key_names: dict[str, str] | None = None
) -> TrainConfig:
    """Validate canonical keys as JSON, strictly: "2" is not a batch size and 1 is not `true`,
    so a quoted number or a wrong type is reported rather than silently coerced."""
    try:
        return TrainConfig.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as err:
        known = config_keys()
        raise InputError(format_validation_error(source, err, known, key_names)) from None


def parse_native(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a native (bundled trainer / seed-style) config mapping, flat or in sections."""
    flat, paths = flatten_sections(data, source)
    return validate_config(flat, source, paths)


def load_native(path: str | Path) -> TrainConfig:
    return parse_native(read_json_object(path), str(path))
