"""fractional-warmup-steps: a `warmup_steps` below 1, read as a ratio by transformers 5 and
refused by transformers 4."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

DOC = RuleDoc(
    id="fractional-warmup-steps",
    code="DD120",
    kind="config",
    severity=Severity.WARNING,
    summary="warmup_steps is a fraction: transformers 5 reads it as a ratio, transformers 4 "
    "fails on it.",
    why="TrainingArguments declares warmup_steps an integer in transformers 4.x: "
    "HfArgumentParser refuses 0.1 from a config file or the command line before training "
    "starts, and a script that passes it in code gets a float where a count of steps goes. "
    "transformers 5 accepts a float below 1 as a share of the steps. The same file thus "
    "works on one version and fails on the other.",
    fix="Write the share as warmup_ratio (every version reads it) and drop warmup_steps.",
    fix_available="never",
    example='{"output_dir": "out", "warmup_steps": 0.1}',
    keys=("warmup_steps",),
)


def check(ctx: CheckContext) -> list[Finding]:
    fraction = ctx.run.warmup_steps_fraction
    if fraction is None:
        return []
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING,
            message=f"warmup_steps {fraction:g} is a fraction: transformers 4 fails on it; "
            "only transformers 5 reads it as a ratio.",
            evidence={"warmup_steps": fraction, "works_with": "transformers>=5"},
            fix=f"Replace it with warmup_ratio: {fraction:g}.",
        )
    ]
