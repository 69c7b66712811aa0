"""eval-cadence: evaluation so frequent that it takes a large share of the run's time."""

from __future__ import annotations

import math

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

# An eval sample is a forward pass; a training sample is a forward and a backward (about 2x
# the forward): so evaluating one sample costs about a third of training on it.
EVAL_COST_PER_TRAIN_SAMPLE = 1 / 3
MAX_EVAL_SHARE = 0.20  # a fifth of the wall time on eval is a fifth of the GPU budget gone
TARGET_EVAL_SHARE = 0.10

DOC = RuleDoc(
    id="eval-cadence",
    code="DD108",
    kind="config",
    keys=("eval_steps", "eval_max_batches"),
    severity=Severity.WARNING,
    summary="Evaluation runs so often that it takes more than 20% of the run's time.",
    why="Each eval pass runs the whole eval split (or eval_max_batches of it). With a small "
    "eval_steps the run spends its GPU time measuring instead of learning. The estimate counts "
    "an eval sample as a third of a training sample (forward only vs forward and backward).",
    fix="Raise eval_steps (or cap eval_max_batches) so that eval takes about 10% of the time.",
    fix_available="always",
    example='{"train_samples": 50000, "batch_size": 2, "eval_steps": 1}',
)


def eval_samples(ctx: CheckContext) -> float | None:
    """Samples per evaluation: eval_max_batches x batch, or the held-out share of the data."""
    cfg = ctx.config
    if cfg.eval_max_batches is not None:
        return cfg.eval_max_batches * cfg.batch_size
    if ctx.dialect != "native" or cfg.eval_data is not None or cfg.train_samples is None:
        return None  # the eval split's size is unknown
    return cfg.train_samples * cfg.eval_fraction / (1 - cfg.eval_fraction)


def check(ctx: CheckContext) -> list[Finding]:
    cfg, planned, per_eval = ctx.config, ctx.planned_steps, eval_samples(ctx)
    if planned is None or per_eval is None:
        return []
    evaluations = planned // cfg.eval_steps
    per_step = cfg.batch_size * cfg.gradient_accumulation_steps  # samples per optimizer step
    eval_cost = evaluations * per_eval * EVAL_COST_PER_TRAIN_SAMPLE
    share = eval_cost / (planned * per_step + eval_cost)
    if share <= MAX_EVAL_SHARE:
        return []
    # Largest number of evals n with n*E / (planned*per_step + n*E) <= TARGET_EVAL_SHARE.
    max_evals = TARGET_EVAL_SHARE / (1 - TARGET_EVAL_SHARE) * planned * per_step
    max_evals /= per_eval * EVAL_COST_PER_TRAIN_SAMPLE
    suggested = min(planned, math.ceil(planned / max(1.0, math.floor(max_evals))))
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING,
            message=f"{evaluations:,} evaluations of {per_eval:,.0f} samples take about "
            f"{share:.0%} of the run.",
            evidence={
                "eval_steps": cfg.eval_steps,
                "optimizer_steps": planned,
                "evaluations": evaluations,
                "eval_samples_per_eval": round(per_eval),
                "train_samples_per_step": per_step,
                "eval_share_of_time": round(share, 4),
                "suggested_eval_steps": suggested,
            },
            fix=f"Set eval_steps to {suggested:,} (eval about "
            f"{TARGET_EVAL_SHARE:.0%} of the time), or cap eval_max_batches.",
            patch={"eval_steps": suggested},
        )
    ]
