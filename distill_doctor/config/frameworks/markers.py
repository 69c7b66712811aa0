"""How strongly a file's keys say "this framework": each framework dialect's score (0: not at
all; the highest wins, `config.dialects.detect_dialect`), told apart from its translation so
that `doctor check` imports only the detected dialect's module (a native or Hugging Face
config imports none: ~5 ms of a cold start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distill_doctor.config.frameworks import count

TORCHTUNE = frozenset(
    {
        "max_steps_per_epoch",
        "kd_ratio",
        "clip_grad_norm",
        "log_every_n_steps",
        "enable_activation_checkpointing",
        "checkpointer",
        "metric_logger",
        "dtype",
        "optimizer_in_bwd",
    }
)
LLAMAFACTORY = frozenset(
    {
        "stage",
        "finetuning_type",
        "cutoff_len",
        "template",
        "lora_target",
        "val_size",
        "quantization_bit",
        "max_samples",
        "plot_loss",
        "preprocessing_num_workers",
        "dataset_dir",
        "overwrite_cache",
        "lora_rank",
        "pref_beta",
        "freeze_trainable_layers",
        "flash_attn",
    }
)
AXOLOTL = frozenset(
    {
        "base_model",
        "micro_batch_size",
        "sequence_len",
        "num_epochs",
        "adapter",
        "lora_r",
        "val_set_size",
        "evals_per_epoch",
        "saves_per_epoch",
        "sample_packing",
        "datasets",
        "dataset_prepared_path",
        "lora_target_linear",
        "special_tokens",
        "load_in_4bit",
    }
)
ACCELERATE = frozenset(
    {
        "compute_environment",
        "distributed_type",
        "mixed_precision",
        "num_processes",
        "num_machines",
        "machine_rank",
        "main_training_function",
        "rdzv_backend",
        "same_network",
        "use_cpu",
        "downcast_bf16",
    }
)
DEEPSPEED = frozenset(
    {
        "zero_optimization",
        "train_micro_batch_size_per_gpu",
        "train_batch_size",
        "gradient_clipping",
        "zero_allow_untested_optimizer",
        "steps_per_print",
        "wall_clock_breakdown",
    }
)


def has_components(data: dict[str, Any]) -> bool:
    return any(isinstance(v, dict) and "_component_" in v for v in data.values())


def torchtune(data: dict[str, Any]) -> int:
    signature = sum(key in data for key in TORCHTUNE)
    return 10 + signature if has_components(data) else 0


def llamafactory(data: dict[str, Any]) -> int:
    return 3 * count(LLAMAFACTORY, data) if count(LLAMAFACTORY, data) >= 2 else 0


def axolotl(data: dict[str, Any]) -> int:
    hits = count(AXOLOTL, data)
    return 3 * hits if hits >= 2 else 0


def distillkit(data: dict[str, Any]) -> int:
    hits = sum(
        [
            isinstance(data.get("training_args"), dict),
            isinstance(data.get("loss_functions"), list),
            isinstance(data.get("teacher"), dict),
            "sequence_length" in data,
        ]
    )
    return 4 * hits if hits >= 2 else 0


def accelerate(data: dict[str, Any]) -> int:
    hits = count(ACCELERATE, data)
    strong = "compute_environment" in data or "distributed_type" in data
    return 5 * hits if strong and hits >= 2 else 0


def deepspeed(data: dict[str, Any]) -> int:
    hits = sum(key in data for key in DEEPSPEED)
    precision = any(
        isinstance(data.get(k), dict) and "enabled" in data[k] for k in ("fp16", "bf16")
    )
    return 5 * (hits + precision) if hits >= 1 and (hits >= 2 or precision) else 0


# Dialect name -> its score, in the order ties are broken (the first of the highest wins).
SCORES: dict[str, Callable[[dict[str, Any]], int]] = {
    "torchtune": torchtune,
    "llamafactory": llamafactory,
    "axolotl": axolotl,
    "distillkit": distillkit,
    "accelerate": accelerate,
    "deepspeed": deepspeed,
}
