"""DistillKit configs (YAML): the student, the teacher and its signal, the loss functions with
their weights and temperature, and a `training_args` section of TrainingArguments.

    model: Qwen/Qwen2.5-1.5B
    sequence_length: 2048
    teacher: {kind: vllm, model_path: Qwen/Qwen2.5-7B, top_k: 128}
    loss_functions:
      - {function: cross_entropy, weight: 0.3}
      - {function: kl, weight: 0.7, temperature: 2.0}
    training_args: {per_device_train_batch_size: 2, learning_rate: 5.0e-6, ...}

A teacher that sends its top-k log-probabilities (vLLM) or that was sampled to disk beforehand
(a dataset of logits) is no full-vocabulary logits tensor in the training step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from distill_doctor.config.frameworks import is_number, positive_int, section, text
from distill_doctor.config.hf import trl_run_facts
from distill_doctor.config.translation import Translation

NAME = "distillkit"
KD_FUNCTIONS = {"kl": "forward_kl", "reverse_kl": "reverse_kl", "jsd": "jsd"}
CE_FUNCTIONS = {"cross_entropy", "ce"}
OFFLINE_KINDS = {"dataset", "offline"}


def translate(data: dict[str, Any]) -> Translation:
    args = section(data, "training_args")
    tr = Translation()
    for key, value in args.items():
        tr.take(key, value, f"training_args.{key}")
    tr.run = trl_run_facts({k: v for k, v in args.items() if k != "temperature"}, tr.run)
    tr.take("max_length", data.get("sequence_length"), "sequence_length")
    tr.take_extra("student_model", text(data.get("model")), "model")
    translate_teacher(section(data, "teacher"), tr)
    translate_losses(data.get("loss_functions"), tr)
    return tr


def translate_teacher(teacher: dict[str, Any], tr: Translation) -> None:
    name = text(teacher.get("model_path")) or text(teacher.get("path"))
    tr.take_extra("teacher_model", name, "teacher.model_path")
    top_k = positive_int(teacher.get("top_k"))
    if top_k:
        tr.take_extra("kd_top_k", top_k, "teacher.top_k")
        tr.run = replace(tr.run, teacher_signal="top_k")
    if text(teacher.get("kind")) in OFFLINE_KINDS:
        tr.run = replace(tr.run, teacher_signal="offline")


def translate_losses(losses: Any, tr: Translation) -> None:
    """KD weight = the KD functions' weights; CE weight = cross-entropy's; the KD temperature
    is the KD function's own (one KD term: several would each have theirs)."""
    if not isinstance(losses, list):
        return
    entries = [entry for entry in losses if isinstance(entry, dict)]
    kd = [e for e in entries if e.get("function") in KD_FUNCTIONS]
    ce = [e for e in entries if e.get("function") in CE_FUNCTIONS]
    weights = [e.get("weight", 1.0) for e in kd + ce]
    if not all(is_number(w) and w >= 0 for w in weights):
        return
    if kd:
        tr.take_extra("kd_weight", float(sum(e.get("weight", 1.0) for e in kd)), "loss_functions")
        tr.take_extra("kd_loss", KD_FUNCTIONS[kd[0]["function"]], "loss_functions")
        if len(kd) == 1 and is_number(kd[0].get("temperature")):
            tr.take_extra("temperature", kd[0]["temperature"], "loss_functions.temperature")
    tr.take_extra("ce_weight", float(sum(e.get("weight", 1.0) for e in ce)), "loss_functions")
    others = [str(e.get("function")) for e in entries if e not in kd and e not in ce]
    if others:
        tr.notes.append(f"loss functions {', '.join(others)}: not modelled by the KD rules.")
