"""The config rules of `doctor check`: one module per bad pattern, listed once in `RULES`.

Each module has `DOC: RuleDoc` and `check(ctx: CheckContext) -> list[Finding]`. Importing this
package registers every DOC, so `doctor rules` and `doctor explain` see them. Adding a rule =
one new module + one line in `RULES` + its fixtures in tests/rules/fixtures/<rule-id>/.
"""

from __future__ import annotations

from distill_doctor.findings import Finding, sort_findings
from distill_doctor.registry import register
from distill_doctor.rules import (
    attention_layers_invalid,
    eval_cadence,
    eval_never_runs,
    fp16_overflow_risk,
    fractional_warmup_steps,
    full_vocab_kd_memory,
    grad_clip_missing,
    kd_temperature_range,
    lr_out_of_range,
    memory_over_budget,
    precision_unsupported,
    scheduler_steps_mismatch,
    sequence_length_exceeds_model,
    warmup_too_long,
)
from distill_doctor.rules.base import CheckContext

RULES = [
    scheduler_steps_mismatch,
    warmup_too_long,
    fractional_warmup_steps,
    kd_temperature_range,
    full_vocab_kd_memory,
    memory_over_budget,
    sequence_length_exceeds_model,
    eval_never_runs,
    eval_cadence,
    attention_layers_invalid,
    precision_unsupported,
    fp16_overflow_risk,
    lr_out_of_range,
    grad_clip_missing,
]

for _rule in RULES:
    register(_rule.DOC)


def run_rules(ctx: CheckContext) -> list[Finding]:
    """Every rule's findings for one config, worst first."""
    findings: list[Finding] = []
    for rule in RULES:
        findings.extend(rule.check(ctx))
    return sort_findings(findings)
