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

from distill_doctor.config.schema import TrainConfig, config_keys
from distill_doctor.errors import InputError

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config is small; a bigger file is not a config


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The top-level JSON object of a file, or an InputError that says exactly what is wrong."""
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
    if not text.strip():
        raise InputError(f"{path}: the file is empty; expected a JSON object of config keys.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}."
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: the top level is a JSON {type(data).__name__}; expected an object "
            "of config keys."
        )
    return data


def did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_validation_error(source: str, err: ValidationError, known: list[str]) -> str:
    """One message listing every invalid key: its location, what was wrong, what was given."""
    lines = [f"{source}: {err.error_count()} invalid config value(s):"]
    for item in err.errors():
        loc = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            key = str(item["loc"][0])
            lines.append(f"  - {loc}: unknown key{did_you_mean(key, known)}")
        else:
            given = json.dumps(item.get("input"), default=str)[:60]
            lines.append(f"  - {loc}: {item['msg']} (got {given})")
    return "\n".join(lines)


def parse_native(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a native (bundled trainer / seed-style) config mapping."""
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        raise InputError(format_validation_error(source, err, config_keys())) from None


def load_native(path: str | Path) -> TrainConfig:
    return parse_native(read_json_object(path), str(path))
