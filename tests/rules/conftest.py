"""Build a rule's `CheckContext` straight from a fixture config (no CLI, no dialect guessing).

Fixtures live in fixtures/<rule-id>/: `fail.json` must trigger the rule, `pass.json` must not,
`fix.json` (optional) is the patch the fail case must get, and `args.json` (optional) maps a
case name to its `--gpu`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill_doctor.config.gpus import resolve_gpu
from distill_doctor.config.loader import parse_native
from distill_doctor.config.models import resolve_model
from distill_doctor.rules.base import CheckContext

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_data(rule_id: str, case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / rule_id / f"{case}.json").read_text())


def fixture_gpu(rule_id: str, case: str) -> str | None:
    args = FIXTURES / rule_id / "args.json"
    if not args.exists():
        return None
    return json.loads(args.read_text()).get(case, {}).get("gpu")


def make_context(data: dict[str, Any], gpu: str | None = None, dialect: str = "native"):
    config = parse_native(data)
    return CheckContext(
        config=config,
        dialect=dialect,
        given=frozenset(data),
        teacher=resolve_model(config.teacher_model),
        student=resolve_model(config.student_model),
        gpu=resolve_gpu(gpu) if gpu else None,
    )


def fixture_context(rule_id: str, case: str) -> CheckContext:
    return make_context(fixture_data(rule_id, case), fixture_gpu(rule_id, case))
