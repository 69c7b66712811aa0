"""Build a rule's `CheckContext` straight from a fixture config (no CLI, no dialect guessing).

Fixtures live in fixtures/<rule-id>/: `fail.json` must trigger the rule, `pass.json` must not,
`fix.json` (optional) is the patch the fail case must get, and `args.json` (optional) maps a
case name to its `--gpu` and, for a rule about another dialect's files, its `--dialect`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distill_doctor.config.dialects import parse_config
from distill_doctor.config.gpus import resolve_gpu
from distill_doctor.config.loader import parse_native
from distill_doctor.config.models import resolve_model
from distill_doctor.rules.base import CheckContext

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_data(rule_id: str, case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / rule_id / f"{case}.json").read_text())


def fixture_args(rule_id: str, case: str) -> dict[str, Any]:
    args = FIXTURES / rule_id / "args.json"
    return json.loads(args.read_text()).get(case, {}) if args.exists() else {}


def fixture_gpu(rule_id: str, case: str) -> str | None:
    return fixture_args(rule_id, case).get("gpu")


def dialect_context(data: dict[str, Any], dialect: str) -> CheckContext:
    """A fixture in another dialect's own keys, read as `doctor check --dialect` reads it."""
    parsed = parse_config(data, "fixture", dialect)
    return CheckContext(parsed.config, parsed.dialect, parsed.given, run=parsed.run)


def make_context(data: dict[str, Any], gpu: str | None = None, dialect: str = "native"):
    """Native keys, labelled with `dialect` (the rules' dialect-specific behaviour)."""
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
    args = fixture_args(rule_id, case)
    data = fixture_data(rule_id, case)
    if "dialect" in args:
        return dialect_context(data, args["dialect"])
    return make_context(data, args.get("gpu"))
