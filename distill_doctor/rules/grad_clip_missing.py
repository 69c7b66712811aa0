"""grad-clip-missing: no gradient clipping (max_grad_norm null or 0)."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

DEFAULT_CLIP = 1.0  # the Hugging Face Trainer's default and the usual transformer choice

DOC = RuleDoc(
    id="grad-clip-missing",
    code="DD113",
    kind="config",
    keys=("max_grad_norm",),
    severity=Severity.WARNING,
    summary="Gradient clipping is off (max_grad_norm null or 0).",
    why="Distillation losses mix terms of very different scales (KD x T^2, feature MSE, "
    "attention), and one bad batch can produce a gradient hundreds of times the usual size. "
    "Unclipped, a single such step can throw the weights far enough to never recover; with "
    "fp16 it is also the usual road to inf and NaN.",
    fix="Set max_grad_norm to 1.0.",
    fix_available="always",
    example='{"max_grad_norm": null}',
)


def check(ctx: CheckContext) -> list[Finding]:
    clip = ctx.config.max_grad_norm
    if clip:
        return []
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING,
            message="Gradient clipping is off: one outlier batch can wreck the weights.",
            evidence={"max_grad_norm": clip, "suggested_max_grad_norm": DEFAULT_CLIP},
            fix=DOC.fix,
            patch={"max_grad_norm": DEFAULT_CLIP},
        )
    ]
