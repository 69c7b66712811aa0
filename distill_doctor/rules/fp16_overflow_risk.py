"""fp16-overflow-risk: fp16 training where values are likely to leave fp16's range."""

from __future__ import annotations

# A module import, not a name import: config.models imports rules.base, which runs this
# package's __init__ and so this module; the name is looked up only when check() runs.
import distill_doctor.config.models as model_table
from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext
from distill_doctor.rules.kd_scope import kd_in_play

FP16_MAX = 65504.0

DOC = RuleDoc(
    id="fp16-overflow-risk",
    code="DD111",
    kind="config",
    keys=("fp16", "temperature"),
    severity=Severity.WARNING,
    summary="fp16 with a model released in bf16, or with a KD temperature below 1.",
    why="fp16 tops out at 65,504. Models pretrained in bf16 (Llama 3, Qwen2.5, Mistral, ...) "
    "were never kept inside that range and have activations that overflow to inf in fp16, "
    "then NaN. A temperature below 1 multiplies the logits by 1/T before the softmax. Loss "
    "scaling protects the gradients, not the forward pass.",
    fix="Use bf16 on Ampere or newer GPUs, fp32 elsewhere; keep the temperature >= 1.",
    fix_available="sometimes",
    example='{"fp16": true, "student_model": "Qwen/Qwen2.5-0.5B"}',
)


def _reasons(ctx: CheckContext) -> list[str]:
    reasons = [
        f"the {role} {facts.name} was released in bf16"
        for role, facts in (("teacher", ctx.teacher), ("student", ctx.student))
        if facts is not None and model_table.released_in_bf16(facts)
    ]
    temperature = ctx.config.temperature
    if kd_in_play(ctx) and ctx.is_given("temperature") and temperature < 1:
        reasons.append(f"temperature {temperature:g} scales the logits by {1 / temperature:g}")
    return reasons


def check(ctx: CheckContext) -> list[Finding]:
    if not ctx.config.fp16:
        return []
    reasons = _reasons(ctx)
    if not reasons:
        return []
    bf16_ok = ctx.gpu is not None and ctx.gpu.bf16_native
    patch = {"fp16": False, "bf16": True} if bf16_ok else None
    use = f"bf16 (native on the {ctx.gpu.name})" if bf16_ok else "fp32, or bf16 on Ampere+"
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING,
            message=f"fp16 (max {FP16_MAX:,.0f}) risks overflow: " + "; ".join(reasons) + ".",
            evidence={
                "fp16_max": FP16_MAX,
                "reasons": "; ".join(reasons),
                "temperature": ctx.config.temperature,
                "gpu": ctx.gpu.name if ctx.gpu else None,
            },
            fix=f"Use {use}.",
            patch=patch,
        )
    ]
