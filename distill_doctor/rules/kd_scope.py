"""When the distillation rules apply: KD is in play only when the config says so.

A native config always distils (its defaults do, kd_weight 0.5); a Hugging Face
TrainingArguments file has no KD keys, so the KD rules stay silent unless some were given.
"""

from __future__ import annotations

from distill_doctor.rules.base import CheckContext

KD_KEYS = ("temperature", "kd_weight", "kd_top_k", "kd_loss", "kd_scale_t2", "teacher_model")


def kd_in_play(ctx: CheckContext) -> bool:
    if ctx.config.kd_weight <= 0:
        return False
    return ctx.dialect == "native" or any(ctx.is_given(key) for key in KD_KEYS)
