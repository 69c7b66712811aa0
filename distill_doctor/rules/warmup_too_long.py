"""warmup-too-long: LR warmup that takes a large share of the optimizer steps, or all of them."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

# Common recipes warm up over 1-10% of training (BERT fine-tuning 10%, Hugging Face examples
# warmup_ratio 0.03-0.1). Past 20%, twice the usual upper end, a fifth of the run is spent
# below the peak LR for no stability gain: worth a warning, not an error.
MAX_WARMUP_SHARE = 0.20
SUGGESTED_WARMUP_SHARE = 0.05

DOC = RuleDoc(
    id="warmup-too-long",
    code="DD102",
    kind="config",
    keys=("warmup_steps",),
    severity=Severity.WARNING,
    summary="LR warmup takes more than 20% of the optimizer steps that really run (an error "
    "when it lasts the whole run).",
    why="Warmup protects the first few hundred updates of Adam; beyond that it only delays "
    "learning. The share must be measured against the optimizer steps that really run, not "
    "the count the scheduler is told: 1,000 warmup steps look like 1.3% of a 75,000-step "
    "schedule but are 21% of 4,689 real steps. When warmup >= the optimizer steps, the LR "
    "never reaches its peak and the decay never starts (error).",
    fix="Warm up over about 5% of the real optimizer steps (Hugging Face: warmup_ratio 0.05).",
    fix_available="always",
    example='{"train_samples": 50000, "batch_size": 2, "gradient_accumulation_steps": 16, '
    '"epochs": 3, "warmup_steps": 1000}',
)


def check(ctx: CheckContext) -> list[Finding]:
    planned, warmup = ctx.planned_steps, ctx.config.warmup_steps
    if planned is None or warmup == 0:
        return []
    share = warmup / planned
    if share <= MAX_WARMUP_SHARE:
        return []
    suggested = max(1, round(planned * SUGGESTED_WARMUP_SHARE))
    never_peaks = warmup >= planned
    evidence = {
        "warmup_steps": warmup,
        "optimizer_steps": planned,
        "warmup_share": round(share, 4),
        "threshold_share": MAX_WARMUP_SHARE,
        "suggested_warmup_steps": suggested,
    }
    if ctx.scheduler_steps and ctx.scheduler_steps != planned:
        evidence["warmup_share_of_scheduler_steps"] = round(warmup / ctx.scheduler_steps, 4)
    if never_peaks:
        message = (
            f"Warmup lasts {warmup:,} steps but only {planned:,} optimizer steps run: the LR "
            "never reaches its peak."
        )
    else:
        message = (
            f"Warmup takes {share:.0%} of the {planned:,} optimizer steps that run "
            f"(over {MAX_WARMUP_SHARE:.0%})."
        )
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.ERROR if never_peaks else Severity.WARNING,
            message=message,
            evidence=evidence,
            fix=f"Set warmup_steps to {suggested:,} (5% of {planned:,} optimizer steps).",
            patch={"warmup_steps": suggested},
        )
    ]
