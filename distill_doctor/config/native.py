"""The native dialect's layout: flat, or grouped in sections.

    {"batch_size": 2, "temperature": 3.0}
    {"optim": {"batch_size": 2}, "distill": {"temperature": 3.0}}

mean the same. A JSON object under a key that is no `TrainConfig` field is a section, and its
keys are read as if written at the top level (one level deep: a config is small). A key set
twice, in two sections or in a section and at the top level, is an error: which one wins
would be a guess.
"""

from __future__ import annotations

from typing import Any

from distill_doctor.config.schema import config_keys
from distill_doctor.errors import InputError

FIELDS = frozenset(config_keys())
# Sections of generation settings (a teacher's or rollout's sampling): their `temperature` is
# the temperature text is SAMPLED with, never the KD temperature, so they are not read as
# training keys (`generation_settings` reports them).
GENERATION_SECTIONS = frozenset(
    {"inference", "generation", "generate", "sampling", "rollout", "decoding"}
)


def is_section(key: str, value: Any) -> bool:
    return isinstance(value, dict) and key not in FIELDS


def generation_settings(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The file's generation sections, by name."""
    return {
        key: value
        for key, value in data.items()
        if key in GENERATION_SECTIONS and is_section(key, value)
    }


def flatten_sections(data: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(the keys as one flat mapping, each key -> where the file sets it: "optim.batch_size")."""
    flat: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for key, value in data.items():
        section = is_section(key, value)
        if section and key in GENERATION_SECTIONS:
            continue
        inner = value.items() if section else ((key, value),)
        for name, item in inner:
            path = f"{key}.{name}" if section else key
            if name in flat:
                raise InputError(
                    f"{source}: {name} is set twice, as {paths[name]} and as {path}; keep one."
                )
            flat[name] = item
            paths[name] = path
    return flat, paths
