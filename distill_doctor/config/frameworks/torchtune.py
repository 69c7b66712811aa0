"""torchtune recipe configs (YAML): components under `_component_`, the KD recipes' `kd_loss`
and `kd_ratio`, and steps capped per epoch with `max_steps_per_epoch`.

    model: {_component_: torchtune.models.qwen2.lora_qwen2_0_5b, lora_rank: 32}
    teacher_model: {_component_: torchtune.models.qwen2.qwen2_1_5b}
    optimizer: {_component_: torch.optim.AdamW, lr: 3e-4}
    lr_scheduler: {_component_: ...get_cosine_schedule_with_warmup, num_warmup_steps: 100}
    kd_loss: {_component_: torchtune.modules.loss.ForwardKLWithChunkedOutputLoss}
    kd_ratio: 0.5
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from distill_doctor.config.frameworks import is_number, positive_int, section, text
from distill_doctor.config.translation import Translation
from distill_doctor.rules.base import RunFacts

NAME = "torchtune"
DTYPES = {"bf16": "bf16", "bfloat16": "bf16", "fp16": "fp16", "float16": "fp16"}
KD_LOSSES = {"ForwardKL": "forward_kl", "ReverseKL": "reverse_kl"}
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
# torchtune model builders -> the model table's names: llama3_2_1b -> llama-3.2-1b.
FAMILIES = {
    "llama3_3": "llama-3.3",
    "llama3_2": "llama-3.2",
    "llama3_1": "llama-3.1",
    "llama3": "meta-llama-3",
    "llama2": "llama-2",
    "qwen2_5": "qwen2.5",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma2": "gemma-2",
    "gemma": "gemma",
    "mistral": "mistral",
    "phi3": "phi-3",
    "phi4": "phi-4",
}
BUILDER = re.compile(r"^(?:q?lora_)?(" + "|".join(FAMILIES) + r")_(.+)$")


def component(data: dict[str, Any], key: str) -> str | None:
    return text(section(data, key).get("_component_"))


def model_name(builder_path: str) -> str:
    """ "torchtune.models.qwen2.lora_qwen2_0_5b" -> "qwen2-0.5b"; unknown builders keep
    their own name (the rules that need the model then stay silent)."""
    builder = builder_path.split(".")[-1]
    match = BUILDER.match(builder)
    if not match:
        return builder
    size = re.sub(r"(\d)_(\d)", r"\1.\2", match.group(2)).replace("_", "-")
    return f"{FAMILIES[match.group(1)]}-{size}".replace("-base", "")


def translate(data: dict[str, Any]) -> Translation:
    checkpointing = data.get("enable_activation_checkpointing") is True
    # torchtune's attention is PyTorch's scaled_dot_product_attention: no s x s scores kept
    run = RunFacts(activation_checkpointing=checkpointing, memory_efficient_attention=True)
    tr = Translation(run=run)
    tr.take("num_train_epochs", data.get("epochs"), "epochs")
    tr.take("per_device_train_batch_size", data.get("batch_size"), "batch_size")
    tr.take(
        "gradient_accumulation_steps",
        data.get("gradient_accumulation_steps"),
        "gradient_accumulation_steps",
    )
    translate_steps(data, tr)
    translate_optimizer(data, tr)
    dtype = DTYPES.get(str(data.get("dtype")))
    if dtype:
        tr.take(dtype, True, "dtype")
    if "clip_grad_norm" in data:
        tr.take_extra("max_grad_norm", data["clip_grad_norm"], "clip_grad_norm")
        if data["clip_grad_norm"] is None:
            tr.extra["max_grad_norm"] = None
            tr.extra_names["max_grad_norm"] = "clip_grad_norm"
    else:
        tr.notes.append("no clip_grad_norm: torchtune recipes do not clip gradients by default.")
    tr.take(
        "max_length",
        positive_int(section(data, "tokenizer").get("max_seq_len")),
        "tokenizer.max_seq_len",
    )
    translate_models(data, tr)
    translate_kd(data, tr)
    return tr


def translate_steps(data: dict[str, Any], tr: Translation) -> None:
    """`max_steps_per_epoch` caps each epoch's optimizer steps: over whole epochs that is a cap
    of epochs x max_steps_per_epoch on the run."""
    per_epoch, epochs = positive_int(data.get("max_steps_per_epoch")), data.get("epochs")
    if per_epoch and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        tr.take("max_steps", per_epoch * epochs, "max_steps_per_epoch")
    if positive_int(data.get("run_val_every_n_steps")):
        tr.take("eval_strategy", "steps", "run_val_every_n_steps")
        tr.take("eval_steps", data["run_val_every_n_steps"], "run_val_every_n_steps")


def translate_optimizer(data: dict[str, Any], tr: Translation) -> None:
    optimizer, scheduler = section(data, "optimizer"), section(data, "lr_scheduler")
    tr.take("learning_rate", optimizer.get("lr"), "optimizer.lr")
    tr.take("weight_decay", optimizer.get("weight_decay"), "optimizer.weight_decay")
    tr.take("warmup_steps", scheduler.get("num_warmup_steps"), "lr_scheduler.num_warmup_steps")
    name = (component(data, "lr_scheduler") or "").split(".")[-1]
    shape = next((SCHEDULES[key] for key in SCHEDULES if key in name), None)
    if shape:
        tr.take("lr_scheduler_type", shape, "lr_scheduler._component_")


def translate_models(data: dict[str, Any], tr: Translation) -> None:
    student, teacher = component(data, "model"), component(data, "teacher_model")
    if student:
        tr.take_extra("student_model", model_name(student), "model._component_")
        builder = student.split(".")[-1]
        if builder.startswith(("lora_", "qlora_")):
            model = section(data, "model")
            rank = positive_int(model.get("lora_rank"))
            targets = model.get("lora_attn_modules")
            tr.run = replace(
                tr.run,
                adapter=builder.split("_")[0],
                adapter_rank=rank,
                adapter_targets=str(targets) if targets is not None else None,
                weight_bits=4 if builder.startswith("qlora_") else None,
            )
    if teacher:
        tr.take_extra("teacher_model", model_name(teacher), "teacher_model._component_")


def translate_kd(data: dict[str, Any], tr: Translation) -> None:
    """kd_ratio weighs the KD loss against cross-entropy: loss = (1 - r) CE + r KD."""
    ratio = data.get("kd_ratio")
    if is_number(ratio) and 0 <= ratio <= 1:
        tr.take_extra("kd_weight", float(ratio), "kd_ratio")
        tr.take_extra("ce_weight", 1.0 - float(ratio), "kd_ratio")
    elif ratio is not None:
        tr.take_extra("kd_weight", ratio, "kd_ratio")  # validation says what is wrong with it
    loss = (component(data, "kd_loss") or "").split(".")[-1]
    kind = next((KD_LOSSES[key] for key in KD_LOSSES if loss.startswith(key)), None)
    if kind:
        tr.take_extra("kd_loss", kind, "kd_loss._component_")
        tr.take_extra("kd_scale_t2", False, "kd_loss._component_")  # no temperature: T = 1
