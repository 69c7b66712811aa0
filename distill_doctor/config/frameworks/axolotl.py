"""axolotl configs (YAML): its own names for the batch, the epochs and the sequence, and the
adapter settings beside them.

    base_model: NousResearch/Llama-3.2-1B
    adapter: qlora            # lora / qlora; load_in_4bit / load_in_8bit quantize the base
    micro_batch_size: 2
    num_epochs: 1
    sequence_len: 2048
    bf16: auto                # bf16 where the GPU has it
    evals_per_epoch: 4
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from distill_doctor.config.frameworks import is_number, positive_int, text
from distill_doctor.config.translation import Translation

NAME = "axolotl"
# axolotl name -> TrainingArguments name, where the meaning is the same.
RENAMES = {
    "micro_batch_size": "per_device_train_batch_size",
    "num_epochs": "num_train_epochs",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "learning_rate": "learning_rate",
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "warmup_steps": "warmup_steps",
    "warmup_ratio": "warmup_ratio",
    "max_steps": "max_steps",
    "sequence_len": "max_length",
    "adam_beta1": "adam_beta1",
    "adam_beta2": "adam_beta2",
    "adam_epsilon": "adam_epsilon",
    "seed": "seed",
}
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def translate(data: dict[str, Any]) -> Translation:
    tr = Translation()
    for key, hf_key in RENAMES.items():
        tr.take(hf_key, data.get(key), key)
    scheduler = text(data.get("lr_scheduler"))
    if scheduler in SCHEDULES:
        tr.take("lr_scheduler_type", SCHEDULES[scheduler], "lr_scheduler")
    elif scheduler:
        tr.notes.append(f"lr_scheduler {scheduler}: a shape the schedule rules do not model.")
    translate_precision(data, tr)
    translate_eval(data, tr)
    tr.take_extra("student_model", text(data.get("base_model")), "base_model")
    translate_adapter(data, tr)
    return tr


def translate_precision(data: dict[str, Any], tr: Translation) -> None:
    for key in ("bf16", "fp16"):
        value = data.get(key)
        if value == "auto":
            tr.notes.append(f"{key}: auto follows the GPU (bf16 on Ampere and newer).")
        elif isinstance(value, bool):
            tr.take(key, value, key)


def translate_eval(data: dict[str, Any], tr: Translation) -> None:
    """eval_steps (a count or a share of the run); evals_per_epoch needs the dataset size."""
    if data.get("val_set_size") == 0 and not data.get("test_datasets"):
        return  # no eval split: axolotl does not evaluate
    if is_number(data.get("eval_steps")):
        tr.take("eval_strategy", "steps", "eval_steps")
        tr.take("eval_steps", data["eval_steps"], "eval_steps")
    elif positive_int(data.get("evals_per_epoch")):
        tr.notes.append(
            f"evals_per_epoch {data['evals_per_epoch']}: axolotl spaces the evaluations over "
            "each epoch; eval cadence is not checked."
        )


def translate_adapter(data: dict[str, Any], tr: Translation) -> None:
    adapter = text(data.get("adapter"))
    bits = (
        4 if data.get("load_in_4bit") is True else 8 if data.get("load_in_8bit") is True else None
    )
    targets = "all linear" if data.get("lora_target_linear") else data.get("lora_target_modules")
    attention = str(data.get("attn_implementation", ""))
    efficient = any(data.get(key) is True for key in ("flash_attention", "sdp_attention"))
    tr.run = replace(
        tr.run,
        activation_checkpointing=data.get("gradient_checkpointing") is True,
        memory_efficient_attention=efficient or attention.startswith(("flash", "sdpa")),
        adapter=adapter,
        adapter_rank=positive_int(data.get("lora_r")) if adapter else None,
        adapter_targets=str(targets) if adapter and targets is not None else None,
        weight_bits=bits,
    )
