"""`--format json`: one object with a `findings` list, the same shape for every command."""

from __future__ import annotations

import json
from typing import Any

from distill_doctor.findings import Finding, sort_findings


def _json_safe(value: Any) -> Any:
    # Strict JSON has no NaN/Infinity; a finding's evidence may hold them (a NaN loss).
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def render_json(findings: list[Finding], **extra: Any) -> str:
    """`{"findings": [...], ...extra}`: findings worst first; extra keys (a summary, the
    source files, the verdict) sit beside the list."""
    document = {**extra, "findings": [f.to_dict() for f in sort_findings(findings)]}
    return json.dumps(_json_safe(document), indent=2, allow_nan=False)
