"""What a config file may be: the limits both config parsers keep, and their shared wording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a config is small; a bigger file is not a config
MAX_YAML_BYTES = 2 * 1024 * 1024  # PyYAML's safe loader reads ~1 MB/s: cap the wait
MAX_DEPTH = 64  # real configs nest 2-4 levels; deeper is a generated or hostile file
MAX_NODES = 2_000_000  # values after YAML aliases are expanded (a billion-laughs file: 10^9)
MAX_WARNINGS = 20


def duplicate_warning(key: str, first: Any, last: Any) -> str:
    return (
        f"{key!r} is set twice ({short(first)}, then {short(last)}): the last value is used, "
        "as the training script's parser would; delete one."
    )


def short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, (dict, list)) else "{...}"
    return text if len(text) <= 40 else text[:37] + "..."


def too_deep(path: Path) -> str:
    return (
        f"{path}: nested deeper than {MAX_DEPTH} levels; a training config nests a few levels "
        "at most. Is this the right file?"
    )
