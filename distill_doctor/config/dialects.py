"""Which dialect a config file speaks, told from its keys (or forced with `--dialect`).

- native: the bundled trainer's `TrainConfig`, with the seed run's flat key names;
- hf: a Hugging Face `TrainingArguments` file;
- trl: the same with TRL's trainer keys or HfArgumentParser's model/data/LoRA arguments;
- torchtune, llamafactory, axolotl, distillkit, accelerate, deepspeed: those frameworks' own
  files (`config.frameworks`), translated into TrainingArguments' terms;
- wandb: a W&B run's `config.yaml`, unwrapped and read in the dialect of the run inside.

The frameworks have markers of their own (torchtune's `_component_`, DeepSpeed's
`zero_optimization`...), scored by how many of their keys a file has; the highest score wins.
Native and Hugging Face files share many keys (`learning_rate`, `fp16`...), so only the keys
one has and the other lacks decide between them. A file that matches nothing, or both of
those two, cannot be told: guessing would check the wrong meaning of the same numbers.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple, get_args

from distill_doctor.config.frameworks import is_number, wandb
from distill_doctor.config.frameworks.markers import SCORES
from distill_doctor.config.hf_keys import HF_KEYS, HF_OBJECT_KEYS, TRL_ONLY
from distill_doctor.config.loader import did_you_mean, validate_config
from distill_doctor.config.native import (
    GENERATION_SECTIONS,
    flatten_sections,
    generation_settings,
    is_section,
)
from distill_doctor.config.schema import TrainConfig, config_keys
from distill_doctor.errors import InputError
from distill_doctor.rules.base import Dialect, RunFacts

if TYPE_CHECKING:
    from distill_doctor.config.hf import HfConfig

DIALECTS: tuple[str, ...] = get_args(Dialect)
NATIVE_ONLY = frozenset(config_keys()) - HF_KEYS
HF_ONLY = HF_KEYS - frozenset(config_keys())
NATIVE_EXAMPLES = "batch_size, epochs, train_samples, num_training_steps, kd_top_k"
HF_EXAMPLES = "per_device_train_batch_size, num_train_epochs, output_dir, lr_scheduler_type"


class ParsedConfig(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    dialect: Dialect
    config: TrainConfig
    given: frozenset[str]  # canonical keys the file (or --train-samples) really set
    key_names: dict[str, str]  # canonical key -> the file's spelling of it
    warmup_ratio: float | None = None  # warmup was given as this share of the steps
    notes: tuple[str, ...] = ()
    run: RunFacts = RunFacts()


def keys_to_judge(data: dict[str, Any]) -> list[str]:
    """The file's keys, with a native section's keys in place of its name (an object under
    a TrainingArguments key that takes one, such as `lr_scheduler_kwargs`, is no section)."""
    keys = list(data)
    for key, value in data.items():
        if isinstance(value, dict) and is_section(key, value) and key not in HF_OBJECT_KEYS:
            keys.remove(key)
            if key not in GENERATION_SECTIONS:  # sampling settings say nothing of the dialect
                keys.extend(value)
    return keys


def detect_dialect(data: dict[str, Any], source: str) -> Dialect:
    if wandb.score(data):
        return "wandb"
    scores = {name: score(data) for name, score in SCORES.items()}
    best = max(scores, key=lambda name: scores[name])
    if scores[best] > 0:
        return best  # type: ignore[return-value]
    keys = keys_to_judge(data)
    native = sorted(key for key in keys if key in NATIVE_ONLY)
    hf = sorted(key for key in keys if key in HF_ONLY)
    if native and not hf:
        return "native"
    if hf and not native:
        return "trl" if any(key in TRL_ONLY for key in keys) else "hf"
    if native and hf:
        found = f"it has native keys ({', '.join(native[:3])}) and Hugging Face keys " + (
            f"({', '.join(hf[:3])})"
        )
    else:
        found = "none of its keys belongs to one dialect only" + typo_hints(keys)
    raise InputError(
        f"{source}: cannot tell the config dialect: {found}. A native (bundled trainer) config "
        f"uses keys such as {NATIVE_EXAMPLES}; a Hugging Face TrainingArguments file uses "
        f"{HF_EXAMPLES}; torchtune, LLaMA-Factory, axolotl, DistillKit, accelerate, DeepSpeed "
        "and W&B files are told by their own keys. Fix the keys, or force one with --dialect "
        f"({', '.join(DIALECTS)})."
    )


def typo_hints(keys: list[str]) -> str:
    known = sorted(set(config_keys()) | HF_KEYS)
    unknown = [key for key in keys if key not in known][:12]
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
    if chosen == "wandb":
        return parse_wandb(data, source, train_samples)
    if chosen == "native":
        return parse_native_dialect(data, source, train_samples)
    # The Hugging Face arithmetic and the framework's translation, imported for its files only.
    from distill_doctor.config.hf import parse_translation, translate_hf

    if chosen in SCORES:
        framework = importlib.import_module(f"distill_doctor.config.frameworks.{chosen}")
        translation = framework.translate(data)
    else:
        translation = translate_hf(data)
    return from_hf(chosen, parse_translation(translation, source, train_samples))  # type: ignore[arg-type]


def from_hf(dialect: Dialect, hf: HfConfig) -> ParsedConfig:
    return ParsedConfig(
        dialect, hf.config, hf.given, hf.key_names, hf.warmup_ratio, hf.notes, hf.run
    )


def parse_native_dialect(
    data: dict[str, Any], source: str, train_samples: int | None
) -> ParsedConfig:
    values, paths = flatten_sections(data, source)
    if train_samples is not None:
        values["train_samples"] = train_samples
    config = validate_config(values, source, paths)
    notes, run = [], RunFacts()
    for name, section in generation_settings(data).items():
        temperature = section.get("temperature")
        if is_number(temperature):
            run = replace(run, sampling_temperature=float(temperature))
        notes.append(f"{name}: generation settings (sampling), not KD training keys.")
    return ParsedConfig("native", config, frozenset(values), paths, notes=tuple(notes), run=run)


def parse_wandb(data: dict[str, Any], source: str, train_samples: int | None) -> ParsedConfig:
    """A W&B run config: its values, read in the dialect of the run that logged them."""
    inner = wandb.unwrap(data)
    dialect = detect_dialect(inner, source)
    if dialect == "wandb":
        raise InputError(f"{source}: a W&B config whose values are W&B configs again.")
    parsed = parse_config(inner, source, dialect, train_samples)
    note = f"a W&B run config, read as a {dialect} config (its desc/value wrappers off)."
    return ParsedConfig(
        "wandb",
        parsed.config,
        parsed.given,
        parsed.key_names,
        parsed.warmup_ratio,
        (note, *parsed.notes),
        parsed.run,
    )
