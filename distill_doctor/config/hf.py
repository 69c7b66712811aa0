"""The Hugging Face dialect: a `TrainingArguments` JSON mapped onto `TrainConfig`'s keys.

Only the keys that matter to the rules are mapped; the rest of a saved `TrainingArguments`
(hub, logging, dataloader settings) is accepted and ignored. Where a key is absent, the value
`transformers` would use applies (3 epochs, batch 8, LR 5e-5), but it is not `given`: rules
about keys the user never wrote stay silent. Ratios (`warmup_ratio`, a fractional
`eval_steps`) are resolved against the optimizer steps, as the HF Trainer does, once the
dataset size is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from distill_doctor.config.hf_keys import HF_KEYS
from distill_doctor.config.loader import did_you_mean, validate_config
from distill_doctor.config.schema import TrainConfig
from distill_doctor.config.steps import batches_per_epoch
from distill_doctor.errors import InputError
from distill_doctor.rules.base import CheckContext

# HF key -> canonical key, where the two mean the same thing.
SAME_MEANING = {
    "per_device_train_batch_size": "batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_train_epochs": "epochs",
    "learning_rate": "learning_rate",
    "weight_decay": "weight_decay",
    "adam_beta1": "adam_beta1",
    "adam_beta2": "adam_beta2",
    "adam_epsilon": "adam_epsilon",
    "max_grad_norm": "max_grad_norm",
    "fp16": "fp16",
    "bf16": "bf16",
    "seed": "seed",
    # TRL's distillation configs
    "teacher_model_name_or_path": "teacher_model",
    "temperature": "temperature",
    "max_length": "max_length",
    "max_seq_length": "max_length",
}

# What `transformers` uses when the file omits a key, where it differs from TrainConfig's.
HF_DEFAULTS = {
    "batch_size": 8,
    "epochs": 3.0,
    "learning_rate": 5e-5,
    "weight_decay": 0.0,
    "seed": 42,
}

# HF scheduler -> the schedule shape the rules model. Polynomial decays linearly at its default
# power 1; cosine with restarts is one cosine at its default single cycle.
SCHEDULERS = {
    "linear": "linear",
    "polynomial": "linear",
    "cosine": "cosine",
    "cosine_with_restarts": "cosine",
    "cosine_with_min_lr": "cosine",
    "cosine_warmup_with_min_lr": "cosine",
    "constant": "constant",
    "constant_with_warmup": "constant",
}

EVAL_STRATEGIES = ("no", "steps", "epoch")


@dataclass(frozen=True)
class HfConfig:
    config: TrainConfig
    given: frozenset[str]
    key_names: dict[str, str]  # canonical key -> the key the file spells it with
    warmup_ratio: float | None  # the ratio the file gave, when warmup was a ratio
    notes: tuple[str, ...]


def unknown_hf_keys(data: dict[str, Any], source: str) -> None:
    """Reject keys that no TrainingArguments or TRL config has, all at once."""
    unknown = [key for key in data if key not in HF_KEYS]
    if unknown:
        hints = "; ".join(f"{key!r}{did_you_mean(key, sorted(HF_KEYS))}" for key in unknown)
        raise InputError(
            f"{source}: unknown Hugging Face TrainingArguments key(s): {hints}. A typo would be "
            "silently ignored by transformers' HfArgumentParser too, so it is an error here."
        )


def _number(data: dict[str, Any], key: str, source: str, minimum: float = 0) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise InputError(f"{source}: {key} must be a number >= {minimum} (got {value!r}).")
    return value


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...], source: str) -> str:
    value = data[key]
    if value not in allowed:
        raise InputError(
            f"{source}: {key} is {value!r}; doctor check understands {', '.join(allowed)}."
        )
    return value


def _whole(value: Any) -> Any:
    # HF dumps step counts declared as float (500.0); the schema wants whole numbers as ints.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def map_plain_keys(data: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The canonical values that need no arithmetic, and the file's name for each."""
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for hf_key, key in SAME_MEANING.items():
        if hf_key in data:
            values[key] = _whole(data[hf_key]) if key != "epochs" else data[hf_key]
            names[key] = hf_key
    if "max_steps" in data and _number(data, "max_steps", source, minimum=-1) > 0:
        values["max_steps"] = _whole(data["max_steps"])
        names["max_steps"] = "max_steps"
    if "lr_scheduler_type" in data:
        values["lr_scheduler"] = map_scheduler(data, source)
        names["lr_scheduler"] = "lr_scheduler_type"
        min_lr_ratio = scheduler_floor(data, values.get("learning_rate", 5e-5))
        if min_lr_ratio is not None:
            values["min_lr_ratio"] = min_lr_ratio
            names["min_lr_ratio"] = "lr_scheduler_kwargs"
    return values, names


def map_scheduler(data: dict[str, Any], source: str) -> str:
    name = data["lr_scheduler_type"]
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise InputError(
            f"{source}: lr_scheduler_type {name!r} is not a schedule doctor check can model; "
            f"it models {', '.join(SCHEDULERS)}. Check the config with one of those, or "
            "judge this schedule from the run with `doctor postmortem`."
        )
    return SCHEDULERS[name]


def scheduler_floor(data: dict[str, Any], learning_rate: float) -> float | None:
    """The final LR as a share of the peak, for the cosine_with_min_lr family."""
    kwargs = data.get("lr_scheduler_kwargs") or {}
    if not isinstance(kwargs, dict) or "min_lr" not in data.get("lr_scheduler_type", ""):
        return None
    if isinstance(kwargs.get("min_lr_rate"), (int, float)):
        return float(kwargs["min_lr_rate"])
    valid_lr = isinstance(learning_rate, float) and learning_rate > 0  # not validated yet
    if isinstance(kwargs.get("min_lr"), (int, float)) and valid_lr:
        return min(float(kwargs["min_lr"]) / learning_rate, 1.0)
    return None


def warmup_setting(data: dict[str, Any], source: str) -> tuple[str, float] | None:
    """(file key, value) of the warmup the file asks for: whole steps, or a ratio below 1
    (`warmup_ratio`, or a fractional `warmup_steps` as transformers 5 reads it)."""
    steps = _number(data, "warmup_steps", source) if "warmup_steps" in data else 0
    if steps > 0:
        return "warmup_steps", steps
    if "warmup_ratio" in data and _number(data, "warmup_ratio", source) > 0:
        ratio = data["warmup_ratio"]
        if ratio >= 1:
            raise InputError(f"{source}: warmup_ratio must be below 1 (got {ratio!r}).")
        return "warmup_ratio", ratio
    return None


def resolve_warmup(value: float, key: str, planned: int | None, notes: list[str]) -> int | None:
    """Warmup in optimizer steps, as `TrainingArguments.get_warmup_steps` computes it; None
    when a ratio cannot be resolved for want of the dataset size."""
    if value >= 1:
        return int(value)
    if planned is None:
        notes.append(
            f"{key} {value} cannot become steps without the dataset size: warmup rules "
            "skipped (pass --train-samples N)."
        )
        return None
    return math.ceil(planned * value)


def resolve_eval_steps(
    data: dict[str, Any], config: TrainConfig, source: str, notes: list[str]
) -> int | None:
    """Optimizer steps between evaluations, as the HF Trainer will run them."""
    key = "eval_strategy" if "eval_strategy" in data else "evaluation_strategy"
    strategy = _choice(data, key, EVAL_STRATEGIES, source) if key in data else "no"
    planned = CheckContext(config).planned_steps
    if strategy == "no":
        return None
    if strategy == "epoch":
        if config.train_samples is None:
            notes.append("eval every epoch: eval rules skipped without --train-samples N.")
            return None
        batches = batches_per_epoch(config.train_samples, config.batch_size)
        return math.ceil(batches / config.gradient_accumulation_steps)
    every = data.get("eval_steps") or data.get("logging_steps", 500)  # HF falls back so
    if isinstance(every, (int, float)) and 0 < every < 1:
        if planned is None:
            notes.append(
                f"eval_steps {every} is a ratio: eval rules skipped without --train-samples N."
            )
            return None
        return math.ceil(planned * every)
    return _whole(every)


def parse_hf(data: dict[str, Any], source: str, train_samples: int | None = None) -> HfConfig:
    """Validate a TrainingArguments mapping into a TrainConfig (the dialect's one entry)."""
    unknown_hf_keys(data, source)
    values, names = map_plain_keys(data, source)
    if train_samples is not None:
        values["train_samples"] = train_samples
    config = validate_config({**HF_DEFAULTS, **values}, source, names)
    notes = ["steps assume one device: on N GPUs an epoch has N times fewer optimizer steps."]
    derived: dict[str, Any] = {}
    warmup = warmup_setting(data, source)
    if warmup is not None:
        key, value = warmup
        steps = resolve_warmup(value, key, CheckContext(config).planned_steps, notes)
        if steps is not None:
            derived["warmup_steps"] = steps
            names["warmup_steps"] = key
    eval_steps = resolve_eval_steps(data, config, source, notes)
    if eval_steps is not None:
        derived["eval_steps"] = eval_steps
        names["eval_steps"] = "eval_steps"
    if derived:
        config = validate_config({**HF_DEFAULTS, **values, **derived}, source, names)
    ratio = warmup[1] if warmup is not None and warmup[1] < 1 else None
    given = frozenset(values) | frozenset(derived)
    return HfConfig(config, given, names, ratio, tuple(notes))
