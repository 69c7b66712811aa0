"""scheduler-steps-mismatch: the LR scheduler is told a different number of steps than the
optimizer steps that really run."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext
from distill_doctor.rules.lr_schedule import lr_multiplier

# Within 1% the schedule ends where it should: the last 1% of a linear decay runs below 1% of
# the peak LR anyway (and rounding the per-epoch count differently costs a step or two).
TOLERANCE = 0.01
# Told too many steps, a run that ends above half its peak LR has lost most of the decay it was
# configured for: the schedule the file describes never happens (error). A smaller overshoot
# only trims the tail of the decay (warning).
NEVER_DECAYS_SHARE = 0.5

DOC = RuleDoc(
    id="scheduler-steps-mismatch",
    code="DD101",
    kind="config",
    keys=("num_training_steps",),
    severity=Severity.ERROR,
    summary="The LR scheduler is told a total step count that differs from the optimizer "
    "steps that will really run.",
    why="The schedule is a function of the step count it was told. Told too FEW steps, the "
    "LR reaches 0 (or its floor) early and the rest of training runs at that LR: the weights "
    "stop moving, eval freezes (error). Told too MANY, the decay never happens: training ends "
    "near the peak LR (error when it ends above half the peak, else a warning). The seed run "
    "told its scheduler 75,000 steps (micro-batches) for 4,689 optimizer steps: too many, so "
    "its LR ended at ~95% of the peak and could never reach 0. Its LR=0 for 94% of training "
    "is the other failure, a scheduler stepped per micro-batch (16x too many calls), which "
    "the `lr-zero` detector catches in the run's log, live or in `doctor postmortem`.",
    fix="Leave num_training_steps unset (null): the trainer then tells the scheduler the "
    "optimizer steps it really runs, ceil(ceil(samples / batch) / accumulation) x epochs, and "
    "the number stays right when batch size, epochs or accumulation change.",
    fix_available="always",
    example='{"batch_size": 2, "train_samples": 50000, "gradient_accumulation_steps": 16, '
    '"epochs": 3, "num_training_steps": 75000}',
)


def check(ctx: CheckContext) -> list[Finding]:
    planned, told = ctx.planned_steps, ctx.scheduler_steps
    cfg = ctx.config
    if planned is None or told is None or cfg.lr_scheduler == "constant":
        return []  # a constant schedule does not depend on the count
    ratio = told / planned
    if abs(ratio - 1.0) <= TOLERANCE:
        return []
    evidence = {
        "scheduler_steps": told,
        "optimizer_steps": planned,
        "ratio": round(ratio, 3),
        "schedule": cfg.lr_scheduler,
        "warmup_steps": cfg.warmup_steps,
    }
    if told < planned:
        return [_told_too_few(ctx, evidence, planned, told)]
    return [_told_too_many(ctx, evidence, planned, told)]


def _told_too_few(ctx: CheckContext, evidence: dict, planned: int, told: int) -> Finding:
    cfg = ctx.config
    floor = cfg.min_lr_ratio * cfg.learning_rate
    share_at_floor = (planned - told) / planned
    evidence |= {
        "direction": "told too few",
        "lr_floor_reached_at_step": told,
        "steps_at_lr_floor": planned - told,
        "share_of_training_at_lr_floor": round(share_at_floor, 4),
        "lr_floor": floor,
    }
    return Finding(
        id=DOC.id,
        code=DOC.code,
        severity=Severity.ERROR,
        message=f"The scheduler is told {told:,} steps but {planned:,} optimizer steps run: "
        f"the LR reaches {floor:g} at step {told:,} and stays there for "
        f"{share_at_floor:.0%} of training.",
        evidence=evidence,
        fix=DOC.fix,
        patch={"num_training_steps": None},
    )


def _told_too_many(ctx: CheckContext, evidence: dict, planned: int, told: int) -> Finding:
    cfg = ctx.config
    # The last optimizer step runs with the LR after planned - 1 scheduler steps.
    share = lr_multiplier(planned - 1, told, cfg.warmup_steps, cfg.lr_scheduler, cfg.min_lr_ratio)
    evidence |= {
        "direction": "told too many",
        "final_lr": cfg.learning_rate * share,
        "final_lr_share_of_peak": round(share, 4),
        "peak_lr": cfg.learning_rate,
    }
    severity = Severity.ERROR if share >= NEVER_DECAYS_SHARE else Severity.WARNING
    return Finding(
        id=DOC.id,
        code=DOC.code,
        severity=severity,
        message=f"The scheduler is told {told:,} steps but only {planned:,} optimizer steps run "
        f"({told / planned:.1f}x too many): training ends at {share:.0%} of the peak LR, "
        f"{'so the decay never happens' if share >= NEVER_DECAYS_SHARE else 'short of its decay'}.",
        evidence=evidence,
        fix=DOC.fix,
        patch={"num_training_steps": None},
    )
