"""kd-temperature-range: a distillation temperature outside the range that works for
token-level KD of language models."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext
from distill_doctor.rules.kd_scope import kd_in_play

# Token-level KD of language models runs at T = 1-2 (DistilBERT: 2; MiniLLM, GKD, DistiLLM: 1).
# Hinton's larger temperatures were for 10-1000 classes; over a vocabulary of tens of
# thousands, T > 2 spreads the teacher's mass over the long tail of implausible tokens.
LOW, HIGH = 1.0, 2.0

DOC = RuleDoc(
    id="kd-temperature-range",
    code="DD103",
    kind="config",
    keys=("temperature",),
    severity=Severity.WARNING,
    summary="The KD temperature is outside 1.0-2.0, the range that works for token-level "
    "distillation of language models.",
    why="Too high: the softened teacher distribution over a large vocabulary is close to "
    "uniform over the tail, so the KD term says little about which tokens matter, and with "
    "T^2 scaling (kd_scale_t2) its gradient is multiplied by T^2 (9x at T=3) and drowns the "
    "cross-entropy term. Too low (< 1): logits / T sharpen the targets toward one-hot and grow "
    "in magnitude, which risks fp16 overflow in the softmax. A high T does not cause NaN by "
    "itself: softmax(z / T) is safer, not less safe, than softmax(z).",
    fix="Use temperature 1.0-2.0; keep kd_scale_t2 on when T != 1 so the KD gradient keeps "
    "its scale relative to cross-entropy.",
    fix_available="never",
    example='{"temperature": 3.0, "kd_weight": 0.5}',
)


def check(ctx: CheckContext) -> list[Finding]:
    cfg = ctx.config
    if not kd_in_play(ctx) or not ctx.is_given("temperature"):
        return []
    temperature = cfg.temperature
    if LOW <= temperature <= HIGH:
        return []
    high = temperature > HIGH
    scale = temperature**2 if cfg.kd_scale_t2 else 1.0
    risk = (
        "soft targets close to uniform over the vocabulary's tail; the KD term says little"
        if high
        else "peaky, near one-hot targets and larger logits / T: fp16 overflow in the softmax"
    )
    scaling = (
        f"T^2 scaling applies: the KD gradient is multiplied by {scale:g}"
        if cfg.kd_scale_t2
        else "T^2 scaling is off: the KD gradient shrinks by about 1/T^2"
    )
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING,
            message=f"KD temperature {temperature:g} is {'above' if high else 'below'} "
            f"{HIGH if high else LOW:g}: {risk}.",
            evidence={
                "temperature": temperature,
                "sane_low": LOW,
                "sane_high": HIGH,
                "side": "high" if high else "low",
                "t2_scaling": cfg.kd_scale_t2,
                "kd_gradient_scale": scale,
            },
            fix=f"Set temperature to {HIGH if high else LOW:g}. {scaling}.",
        )
    ]
