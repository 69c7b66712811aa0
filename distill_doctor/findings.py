"""`Finding`: the one currency of the tool. Static rules, live detectors and the postmortem
all produce findings; renderers, sinks and actions consume them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

EvidenceValue = int | float | str | bool | None


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse; sorts findings worst first."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True)
class Finding:
    id: str  # kebab-case rule or detector name; stable, users' scripts depend on it
    code: str  # short code, e.g. DD101
    severity: Severity
    message: str  # one line, with the numbers that matter
    evidence: dict[str, EvidenceValue] = field(default_factory=dict)
    fix: str = ""
    step: int | None = None  # None for static config rules
    # Machine-applicable fix for `doctor check --fix`: canonical config field -> new value.
    patch: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": dict(self.evidence),
            "fix": self.fix,
            "step": self.step,
        }
        if self.patch:
            data["patch"] = dict(self.patch)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            code=str(data.get("code", "")),
            severity=Severity(data.get("severity", "warning")),
            message=str(data.get("message", "")),
            evidence=dict(data.get("evidence") or {}),
            fix=str(data.get("fix", "")),
            step=data.get("step"),
            patch=data.get("patch"),
        )


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first, then by step (static findings first), then by id: a stable report order."""
    return sorted(
        findings,
        key=lambda f: (-f.severity.rank, f.step if f.step is not None else -1, f.id),
    )
