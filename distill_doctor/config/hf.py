"""The Hugging Face dialect: a `TrainingArguments` mapping onto `TrainConfig`'s keys.

It is also the common ground of the other frameworks' dialects: LLaMA-Factory, axolotl,
DistillKit, DeepSpeed and TRL say most things under TrainingArguments' names, so each dialect
translates its file into them (`Translation`) and this module does the arithmetic once.
Only the keys that matter to the rules are mapped; the rest of a saved `TrainingArguments`
(hub, logging, dataloader settings) is accepted and ignored, and a key no TrainingArguments,
TRL or HfArgumentParser model/data/LoRA dataclass has is a note, not a refusal. Where a key
is absent, the value `transformers` would use applies (3 epochs, batch 8, LR 5e-5), but it is
not `given`: rules about keys the user never wrote stay silent. Ratios (`warmup_ratio`, a fractional
`eval_steps`) are resolved against the optimizer steps, as the HF Trainer does, once the
dataset size is known.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, NamedTuple

from distill_doctor.config.hf_keys import HF_KEYS
from distill_doctor.config.loader import validate_config
from distill_doctor.config.schema import TrainConfig
from distill_doctor.config.steps import batches_per_epoch
from distill_doctor.config.translation import Translation, unknown_keys_note
from distill_doctor.errors import InputError
from distill_doctor.rules.base import CheckContext, RunFacts

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
    # TRL's configs and HfArgumentParser's model arguments (the trained model is the student)
    "teacher_model_name_or_path": "teacher_model",
    "model_name_or_path": "student_model",
    "max_length": "max_length",
    "max_seq_length": "max_length",
}
# TRL's `temperature` (GKD, GRPO, online DPO) is the temperature the student SAMPLES with, not
# a KD temperature: it never divides the logits of a KD loss, so the KD rules must not see it.

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


class HfConfig(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    config: TrainConfig
    given: frozenset[str]
    key_names: dict[str, str]  # canonical key -> the key the file spells it with
    warmup_ratio: float | None  # the ratio the file gave, when warmup was a ratio
    notes: tuple[str, ...]
    run: RunFacts = RunFacts()


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
            f"{key} {value}: judged as a share of the run; its steps need the dataset size "
            "(pass --train-samples N)."
        )
        return None
    return math.ceil(planned * value)


def resolve_eval_steps(
    data: dict[str, Any],
    config: TrainConfig,
    source: str,
    notes: list[str],
    run: RunFacts | None = None,
) -> int | None:
    """Optimizer steps between evaluations, as the HF Trainer will run them."""
    key = "eval_strategy" if "eval_strategy" in data else "evaluation_strategy"
    strategy = _choice(data, key, EVAL_STRATEGIES, source) if key in data else "no"
    ctx = CheckContext(config, run=run or RunFacts())
    planned = ctx.planned_steps
    if strategy == "no":
        return None
    if strategy == "epoch":
        if config.train_samples is None:
            notes.append("eval every epoch: eval rules skipped without --train-samples N.")
            return None
        per_process = math.ceil(config.train_samples / (ctx.run.processes or 1))
        batches = batches_per_epoch(per_process, config.batch_size)
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


def trl_run_facts(data: dict[str, Any], run: RunFacts) -> RunFacts:
    """What TRL's and HfArgumentParser's extra keys say about the run."""
    changes: dict[str, Any] = {}
    temperature = data.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        changes["sampling_temperature"] = float(temperature)
    if data.get("use_peft") is True or ("lora_r" in data and "use_peft" not in data):
        changes["adapter"] = "lora"
        rank = data.get("lora_r")
        changes["adapter_rank"] = rank if isinstance(rank, int) else None
        targets = data.get("lora_target_modules")
        changes["adapter_targets"] = str(targets) if targets is not None else None
    if data.get("load_in_4bit") is True:
        changes["weight_bits"] = 4
    elif data.get("load_in_8bit") is True:
        changes["weight_bits"] = 8
    if data.get("gradient_checkpointing") is True:
        changes["activation_checkpointing"] = True
    if str(data.get("attn_implementation", "")).startswith(("flash_attention", "sdpa")):
        changes["memory_efficient_attention"] = True
    if any(is_logits_file(key, value) for key, value in data.items()):
        changes["teacher_signal"] = "offline"
    processes = data.get("num_processes", data.get("world_size"))
    if isinstance(processes, int) and not isinstance(processes, bool) and processes > 0:
        changes["processes"] = processes
    return replace(run, **changes)


def is_logits_file(key: str, value: Any) -> bool:
    """A precomputed teacher signal: `teacher_logits_path: logits/`, `logits_file: x.pt`."""
    return "logits" in key and key.endswith(("_path", "_file", "_dir")) and bool(value)


def trl_max_length(data: dict[str, Any], translation: Translation) -> None:
    """GRPO/online DPO: the student sees the prompt and its completion in one sequence."""
    prompt, completion = data.get("max_prompt_length"), data.get("max_completion_length")
    both = all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (prompt, completion)
    )
    if both and "max_length" not in data and "max_seq_length" not in data:
        translation.take(
            "max_length", prompt + completion, "max_prompt_length + max_completion_length"
        )


def translate_hf(data: dict[str, Any]) -> Translation:
    """A TrainingArguments / TRL file: its own keys, and what TRL's extras say."""
    known = {key: key for key in data if key in HF_KEYS}
    translation = Translation(hf=dict(data), names=known)
    translation.run = trl_run_facts(data, translation.run)
    trl_max_length(data, translation)
    translation.unread = [key for key in data if key not in HF_KEYS]
    note = unknown_keys_note(translation.unread, HF_KEYS, "TrainingArguments or TRL config")
    translation.notes.extend([note] if note else [])
    return translation


def parse_hf(data: dict[str, Any], source: str, train_samples: int | None = None) -> HfConfig:
    """Validate a TrainingArguments mapping into a TrainConfig."""
    return parse_translation(translate_hf(data), source, train_samples)


def parse_translation(
    translation: Translation, source: str, train_samples: int | None = None
) -> HfConfig:
    """Validate a translated file into a TrainConfig: map the TrainingArguments names, then
    resolve warmup and eval cadence against the optimizer steps (over the processes)."""
    data, run = translation.hf, translation.run
    values, names = map_plain_keys(data, source)
    values.update(translation.extra)
    names.update(translation.extra_names)
    if train_samples is not None:
        values["train_samples"] = train_samples
    file_names = {key: translation.names.get(hf_key, hf_key) for key, hf_key in names.items()}
    file_names.update(translation.extra_names)
    config = validate_config({**HF_DEFAULTS, **values}, source, file_names)
    notes = list(translation.notes)
    if run.processes is None:
        notes.append(
            "steps assume one process: on N GPUs an epoch has N times fewer optimizer steps "
            "(the launcher's --num_processes / --nproc_per_node is not in this file)."
        )
    derived: dict[str, Any] = {}
    planned = CheckContext(config, run=run).planned_steps
    warmup = warmup_setting(data, source)
    if warmup is not None:
        key, value = warmup
        steps = resolve_warmup(value, translation.names.get(key, key), planned, notes)
        if steps is not None:
            derived["warmup_steps"] = steps
            file_names["warmup_steps"] = translation.names.get(key, key)
    eval_steps = resolve_eval_steps(data, config, source, notes, run)
    if eval_steps is not None:
        derived["eval_steps"] = eval_steps
        file_names["eval_steps"] = translation.names.get("eval_steps", "eval_steps")
    if derived:
        config = validate_config({**HF_DEFAULTS, **values, **derived}, source, file_names)
    ratio = warmup[1] if warmup is not None and warmup[1] < 1 else None
    fraction = ratio if warmup is not None and warmup[0] == "warmup_steps" else None
    run = replace(run, warmup_ratio=ratio, warmup_steps_fraction=fraction)
    given = frozenset(values) | frozenset(derived)
    return HfConfig(config, given, file_names, ratio, tuple(notes), run)
