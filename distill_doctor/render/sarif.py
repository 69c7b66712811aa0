"""`--format sarif`: SARIF 2.1.0, the format code-scanning services (GitHub, GitLab) read.

One run; `tool.driver.rules` lists every registered rule and detector (code as `id`, the
kebab-case name as `name`, as ruff does), each result points at its rule by `ruleId` and
`ruleIndex`, and its location is the config file, at the line of the key the fix changes
when there is one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from distill_doctor import __version__
from distill_doctor.findings import Finding, Severity, sort_findings
from distill_doctor.registry import RuleDoc
from distill_doctor.render.json import _json_safe

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def sarif_rule(doc: RuleDoc) -> dict[str, Any]:
    return {
        "id": doc.code,
        "name": doc.id,
        "shortDescription": {"text": doc.summary},
        "fullDescription": {"text": doc.why},
        "help": {"text": doc.fix},
        "defaultConfiguration": {"level": LEVELS[doc.severity]},
        "properties": {"kind": doc.kind, "fix_available": doc.fix_available},
    }


def sarif_result(
    finding: Finding, rule_index: Mapping[str, int], artifact_uri: str, line: int | None
) -> dict[str, Any]:
    # A region is what code-scanning UIs anchor on; line 1 when no key is concerned.
    location = {"artifactLocation": {"uri": artifact_uri}, "region": {"startLine": line or 1}}
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": LEVELS[finding.severity],
        "message": {
            "text": f"{finding.message} Fix: {finding.fix}" if finding.fix else finding.message
        },
        "locations": [{"physicalLocation": location}],
        "properties": {"id": finding.id, "evidence": finding.evidence},
    }
    if finding.code in rule_index:
        result["ruleIndex"] = rule_index[finding.code]
    return result


def render_sarif(
    findings: Sequence[Finding],
    *,
    docs: Sequence[RuleDoc],
    artifact_uri: str,
    lines: Mapping[str, int | None] | None = None,
) -> str:
    """The SARIF log; `lines` maps a finding id to the line of the key it concerns."""
    lines = lines or {}
    rule_index = {doc.code: index for index, doc in enumerate(docs)}
    results = [
        sarif_result(f, rule_index, artifact_uri, lines.get(f.id))
        for f in sort_findings(list(findings))
    ]
    log = {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "distill_doctor",
                        "version": __version__,
                        "rules": [sarif_rule(doc) for doc in docs],
                    }
                },
                "artifacts": [{"location": {"uri": artifact_uri}}],
                "results": results,
            }
        ],
    }
    return json.dumps(_json_safe(log), indent=2, allow_nan=False)
