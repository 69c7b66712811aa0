"""The one-line tally closing every report ("1 error, 2 warnings, 0 info"), apart from the Rich
renderers so that `--format json` and `--format sarif` never import Rich."""

from __future__ import annotations

from collections.abc import Sequence

from distill_doctor.findings import Finding, Severity


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def summary_line(findings: Sequence[Finding]) -> str:
    count = {severity: sum(f.severity is severity for f in findings) for severity in Severity}
    return (
        f"{plural(count[Severity.ERROR], 'error')}, "
        f"{plural(count[Severity.WARNING], 'warning')}, {count[Severity.INFO]} info"
    )
