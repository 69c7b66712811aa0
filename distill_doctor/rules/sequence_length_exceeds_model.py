"""sequence-length-exceeds-model: max_length beyond the positions the student or the teacher
can encode."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext, ModelFacts

DOC = RuleDoc(
    id="sequence-length-exceeds-model",
    code="DD106",
    kind="config",
    keys=("max_length",),
    severity=Severity.ERROR,
    summary="max_length is longer than the student's or the teacher's maximum positions.",
    why="A model with learned position embeddings (GPT-2: 1,024) fails with an index error on "
    "the first full-length batch; one with rotary positions runs but degrades past the "
    "length it was trained for. Both models see the same tokens, so the shorter one bounds "
    "max_length.",
    fix="Set max_length to at most the smaller of the two models' maximum positions.",
    fix_available="always",
    example='{"student_model": "gpt2", "max_length": 2048}',
)


def check(ctx: CheckContext) -> list[Finding]:
    models = {"student": ctx.student, "teacher": ctx.teacher}
    known: dict[str, ModelFacts] = {role: f for role, f in models.items() if f is not None}
    too_short = {r: f for r, f in known.items() if ctx.config.max_length > f.max_positions}
    if not too_short:
        return []
    limit = min(f.max_positions for f in known.values())
    evidence: dict[str, int | str] = {"max_length": ctx.config.max_length}
    for role, facts in known.items():
        evidence[f"{role}_max_positions"] = facts.max_positions
        evidence[f"{role}_source"] = f"{facts.name} ({facts.source})"
    names = " and ".join(
        f"the {role} ({f.name}: {f.max_positions:,})" for role, f in too_short.items()
    )
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.ERROR,
            message=f"max_length {ctx.config.max_length:,} exceeds the positions of {names}.",
            evidence=evidence,
            fix=f"Set max_length to {limit:,} or less.",
            patch={"max_length": limit},
        )
    ]
