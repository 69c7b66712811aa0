"""eval-never-runs: eval_steps beyond the optimizer steps, so no evaluation ever happens."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

EVALS_SUGGESTED = 10  # ten points make a curve; fewer hide a plateau, more cost time

DOC = RuleDoc(
    id="eval-never-runs",
    code="DD107",
    kind="config",
    keys=("eval_steps",),
    severity=Severity.ERROR,
    summary="eval_steps is larger than the optimizer steps that run: no evaluation during "
    "training.",
    why="eval_steps counts optimizer steps, not micro-batches. Set as if it counted batches "
    "(or with accumulation forgotten), it can exceed the whole run: no eval curve, no best "
    "checkpoint, and a failed run looks like a finished one. A Hugging Face Trainer then never "
    "evaluates (error); the bundled trainer still evaluates once before the first and once "
    "after the last step, so a frozen model shows only at the very end (warning).",
    fix="Set eval_steps to about a tenth of the optimizer steps.",
    fix_available="always",
    example='{"train_samples": 50000, "batch_size": 2, "gradient_accumulation_steps": 16, '
    '"epochs": 1, "eval_steps": 5000}',
)


def check(ctx: CheckContext) -> list[Finding]:
    planned = ctx.planned_steps
    if planned is None or (ctx.dialect != "native" and not ctx.is_given("eval_steps")):
        return []
    eval_steps = ctx.config.eval_steps
    if eval_steps <= planned:
        return []
    suggested = max(1, planned // EVALS_SUGGESTED)
    bundled = ctx.dialect == "native"  # evaluates before the first and after the last step
    outcome = (
        "only the evaluations before and after training run"
        if bundled
        else ("evaluation never happens")
    )
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING if bundled else Severity.ERROR,
            message=f"eval_steps {eval_steps:,} is past the {planned:,} optimizer steps that "
            f"run: {outcome}.",
            evidence={
                "eval_steps": eval_steps,
                "optimizer_steps": planned,
                "evaluations_during_training": 0,
                "suggested_eval_steps": suggested,
            },
            fix=f"Set eval_steps to {suggested:,} ({EVALS_SUGGESTED} evaluations).",
            patch={"eval_steps": suggested},
        )
    ]
