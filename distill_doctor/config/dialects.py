"""Which dialect a config file speaks, told from its keys (or forced with `--dialect`).

- native: the bundled trainer's `TrainConfig`, with the seed run's flat key names;
- hf: a Hugging Face `TrainingArguments` JSON (optionally with TRL's distillation keys).

Both dialects share many keys (`learning_rate`, `gradient_accumulation_steps`, `fp16`...), so
only the keys one dialect has and the other lacks decide. A file with both kinds, or with
neither, cannot be told apart: guessing would check the wrong meaning of the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from distill_doctor.config.hf import parse_hf
from distill_doctor.config.hf_keys import HF_KEYS, HF_OBJECT_KEYS
from distill_doctor.config.loader import did_you_mean, validate_config
from distill_doctor.config.native import flatten_sections, is_section
from distill_doctor.config.schema import TrainConfig, config_keys
from distill_doctor.errors import InputError
from distill_doctor.rules.base import Dialect

DIALECTS: tuple[str, ...] = get_args(Dialect)
NATIVE_ONLY = frozenset(config_keys()) - HF_KEYS
HF_ONLY = HF_KEYS - frozenset(config_keys())
NATIVE_EXAMPLES = "batch_size, epochs, train_samples, num_training_steps, kd_top_k"
HF_EXAMPLES = "per_device_train_batch_size, num_train_epochs, output_dir, lr_scheduler_type"


@dataclass(frozen=True)
class ParsedConfig:
    dialect: Dialect
    config: TrainConfig
    given: frozenset[str]  # canonical keys the file (or --train-samples) really set
    key_names: dict[str, str]  # canonical key -> the file's spelling of it
    warmup_ratio: float | None = None  # HF: warmup was given as this share of the steps
    notes: tuple[str, ...] = ()


def keys_to_judge(data: dict[str, Any]) -> list[str]:
    """The file's keys, with a native section's keys in place of its name (an object under
    a TrainingArguments key that takes one, such as `lr_scheduler_kwargs`, is no section)."""
    keys: list[str] = []
    for key, value in data.items():
        keys.extend(value if is_section(key, value) and key not in HF_OBJECT_KEYS else [key])
    return keys


def detect_dialect(data: dict[str, Any], source: str) -> Dialect:
    keys = keys_to_judge(data)
    native = sorted(key for key in keys if key in NATIVE_ONLY)
    hf = sorted(key for key in keys if key in HF_ONLY)
    if native and not hf:
        return "native"
    if hf and not native:
        return "hf"
    if native and hf:
        found = f"it has native keys ({', '.join(native[:3])}) and Hugging Face keys " + (
            f"({', '.join(hf[:3])})"
        )
    else:
        found = "none of its keys belongs to one dialect only" + typo_hints(keys)
    raise InputError(
        f"{source}: cannot tell the config dialect: {found}. A native (bundled trainer) config "
        f"uses keys such as {NATIVE_EXAMPLES}; a Hugging Face TrainingArguments JSON uses "
        f"{HF_EXAMPLES}. Fix the keys, or force one with --dialect native or --dialect hf."
    )


def typo_hints(keys: list[str]) -> str:
    known = sorted(set(config_keys()) | HF_KEYS)
    unknown = [key for key in keys if key not in known]
    hints = [f"{key!r}{did_you_mean(key, known)}" for key in unknown]
    return f"; unknown: {', '.join(hints)}" if hints else ""


def parse_config(
    data: dict[str, Any],
    source: str,
    dialect: str | None = None,
    train_samples: int | None = None,
) -> ParsedConfig:
    """Validate a config mapping in its dialect (detected unless given); `train_samples`
    overrides the file's dataset size."""
    if dialect is not None and dialect not in DIALECTS:
        raise InputError(f"unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}.")
    chosen = dialect or detect_dialect(data, source)
    if chosen == "hf":
        hf = parse_hf(data, source, train_samples)
        return ParsedConfig("hf", hf.config, hf.given, hf.key_names, hf.warmup_ratio, hf.notes)
    values, paths = flatten_sections(data, source)
    if train_samples is not None:
        values["train_samples"] = train_samples
    config = validate_config(values, source, paths)
    return ParsedConfig("native", config, frozenset(values), paths)
