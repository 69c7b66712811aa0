"""DeepSpeed JSON configs: batch, accumulation, clipping and precision, where "auto" means
"whatever the Hugging Face Trainer's arguments say".

    {"train_micro_batch_size_per_gpu": "auto", "gradient_clipping": 1.0,
     "bf16": {"enabled": "auto"}, "zero_optimization": {"stage": 3}}

Set to numbers, train_batch_size = micro batch x accumulation x processes, so the three
together say how many processes the run has.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from distill_doctor.config.frameworks import positive_int, section
from distill_doctor.config.translation import Translation

NAME = "deepspeed"


def translate(data: dict[str, Any]) -> Translation:
    tr = Translation()
    auto = sorted(path for path, value in leaves(data) if value == "auto")
    micro = data.get("train_micro_batch_size_per_gpu")
    accumulation = data.get("gradient_accumulation_steps")
    tr.take("per_device_train_batch_size", number_or_none(micro), "train_micro_batch_size_per_gpu")
    tr.take(
        "gradient_accumulation_steps", number_or_none(accumulation), "gradient_accumulation_steps"
    )
    tr.take("max_grad_norm", number_or_none(data.get("gradient_clipping")), "gradient_clipping")
    for key in ("fp16", "bf16"):
        enabled = section(data, key).get("enabled")
        if isinstance(enabled, bool):
            tr.take(key, enabled, f"{key}.enabled")
    params = section(section(data, "optimizer"), "params")
    tr.take("learning_rate", number_or_none(params.get("lr")), "optimizer.params.lr")
    scheduler = section(section(data, "scheduler"), "params")
    tr.take(
        "warmup_steps",
        number_or_none(scheduler.get("warmup_num_steps")),
        "scheduler.params.warmup_num_steps",
    )
    total = positive_int(scheduler.get("total_num_steps"))
    tr.take_extra("num_training_steps", total, "scheduler.params.total_num_steps")
    global_batch = positive_int(data.get("train_batch_size"))
    if global_batch and positive_int(micro) and positive_int(accumulation):
        processes, rest = divmod(global_batch, micro * accumulation)
        if processes and not rest:
            tr.run = replace(tr.run, processes=processes)
    if auto:
        listed = ", ".join(auto[:4]) + ("..." if len(auto) > 4 else "")
        tr.notes.append(
            f'{len(auto)} value(s) are "auto" ({listed}): they follow the Trainer\'s '
            "arguments; check that config for them."
        )
    return tr


def number_or_none(value: Any) -> Any:
    """ "auto" follows the Trainer: not a value of this file."""
    return None if value == "auto" else value


def leaves(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if not isinstance(data, dict):
        return [(prefix, data)]
    found: list[tuple[str, Any]] = []
    for key, value in data.items():
        found.extend(leaves(value, f"{prefix}.{key}" if prefix else key))
    return found
