"""lr-out-of-range: a peak learning rate far outside what fine-tuning or distilling a
pretrained transformer with AdamW tolerates."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

# AdamW on pretrained transformers: 1e-5 to 5e-4 is the working range (GPT-2 and DistilBERT
# distillation 5e-4, Llama fine-tuning 1e-5 to 2e-4). Billion-parameter students diverge
# sooner: Llama's own pretraining peak was 3e-4. At 1e-2 Adam's updates are ~1% of a typical
# weight every step: divergence is near certain (error). Below 1e-6 nothing moves in the run.
# Tiny students (the bundled demo, under 20M parameters) train well up to ~5e-3.
LOW = 1e-6
HIGH = 1e-3
HIGH_LARGE_MODEL = 3e-4
LARGE_MODEL_PARAMS = 1_000_000_000
HIGH_TINY_MODEL = 5e-3
TINY_MODEL_PARAMS = 20_000_000
DIVERGES = 1e-2

DOC = RuleDoc(
    id="lr-out-of-range",
    code="DD112",
    kind="config",
    keys=("learning_rate",),
    severity=Severity.WARNING,
    summary="learning_rate above 1e-3 (3e-4 for a 1B+ parameter student, 5e-3 under 20M), "
    "below 1e-6, or at 1e-2 and beyond (error).",
    why="Too high, AdamW's updates wreck the pretrained weights: loss spikes, then NaN. Too "
    "low, the weights barely move in the run and the eval metrics look frozen, the seed's "
    "symptom from a different cause.",
    fix="Use 5e-5 to 5e-4 for small students, 1e-5 to 2e-4 for billion-parameter ones.",
    fix_available="never",
    example='{"learning_rate": 0.01}',
)


def _params(ctx: CheckContext) -> str:
    if ctx.student is None:
        return "a student of unknown size"
    return f"a {ctx.student.num_params / 1e6:.3g}M-parameter student"


def _high_bound(ctx: CheckContext) -> float:
    params = ctx.student.num_params if ctx.student else None
    if params is not None and params >= LARGE_MODEL_PARAMS:
        return HIGH_LARGE_MODEL
    if params is not None and params < TINY_MODEL_PARAMS:
        return HIGH_TINY_MODEL
    return HIGH


def check(ctx: CheckContext) -> list[Finding]:
    lr = ctx.config.learning_rate
    high = _high_bound(ctx)
    if LOW <= lr <= high:
        return []
    side = "low" if lr < LOW else "high"
    severity = Severity.ERROR if lr >= DIVERGES else Severity.WARNING
    bound = LOW if side == "low" else high
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=severity,
            message=f"learning_rate {lr:g} is {'below' if side == 'low' else 'above'} {bound:g}"
            + (f" for {_params(ctx)}" if side == "high" else "")
            + ".",
            evidence={
                "learning_rate": lr,
                "side": side,
                "sane_low": LOW,
                "sane_high": high,
                "student_params": ctx.student.num_params if ctx.student else None,
            },
            fix=DOC.fix,
        )
    ]
