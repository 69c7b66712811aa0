"""What `doctor check` could not check, and why: one line per gap, as the postmortem's coverage
says which lines it skipped. A silent rule must not read as a passed one.

    not_checked(ctx)
    -> ["dataset size unknown: warmup share, eval cadence and scheduler steps not checked
         (pass --train-samples N)", "no --gpu: ...", ...]
"""

from __future__ import annotations

from distill_doctor.rules.base import CheckContext
from distill_doctor.rules.kd_scope import kd_in_play


def not_checked(ctx: CheckContext) -> list[str]:
    return [*steps_gaps(ctx), *model_gaps(ctx), *memory_gaps(ctx)]


def steps_gaps(ctx: CheckContext) -> list[str]:
    if ctx.planned_steps is not None:
        return []
    if ctx.most_steps is not None:
        return [
            f"dataset size unknown, capped at {ctx.run.max_train_samples:,} examples: only "
            "what holds even at the cap is checked (pass --train-samples N for the rest)."
        ]
    return [
        "dataset size unknown: warmup length, eval cadence and scheduler steps not checked "
        "(pass --train-samples N)."
    ]


def model_gaps(ctx: CheckContext) -> list[str]:
    named = ctx.named_models()
    if not named:
        return [
            "no model named in this file: sequence length, precision and memory rules "
            "that need the model not checked."
        ]
    return [
        f"{role} {name}: not in the model table and no local config.json: its positions, "
        "vocabulary and size not checked (give a local model folder)."
        for role, name, facts in named
        if facts is None
    ]


def memory_gaps(ctx: CheckContext) -> list[str]:
    gaps = []
    if ctx.run.rope_scaling:
        gaps.append(
            f"rope_scaling {ctx.run.rope_scaling}: the positions are scaled past the model's "
            "config.json; the sequence length is not checked against them."
        )
    if ctx.gpu is None:
        gaps.append("no --gpu: peak memory not compared with a GPU (pass --gpu T4, A100-80GB...).")
    if kd_in_play(ctx) and ctx.dialect != "native" and not ctx.is_given("max_length"):
        gaps.append("sequence length not set in the file: the KD logits' memory not checked.")
    return gaps
