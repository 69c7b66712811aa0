"""The postmortem report as data: a verdict, the first thing that went wrong, the timeline of
findings and the diagnosis chains. Renderers turn it into text, JSON or a plot."""

from __future__ import annotations

from typing import Literal, NamedTuple

from distill_doctor import records as R
from distill_doctor.findings import Finding, Severity, has_errors
from distill_doctor.postmortem.analysis import Analysis
from distill_doctor.postmortem.chains import Chain, ChainInputs, find_chains
from distill_doctor.postmortem.coverage import Check, coverage, judged_series
from distill_doctor.postmortem.run_config import RunConfig

Verdict = Literal["healthy", "sick", "no-data"]


class Report(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    verdict: Verdict
    first_problem: Finding | None
    timeline: list[Finding]  # by step, then worst first
    chains: list[Chain]
    analysis: Analysis
    checks: list[Check]  # every stream check: ran on which series, or skipped and why

    @property
    def exit_code(self) -> int:
        """0 healthy (or warnings only), 1 error findings, 2 nothing to judge."""
        if self.verdict == "no-data":
            return 2
        return 1 if has_errors(self.timeline) else 0

    def summary(self) -> dict[str, object]:
        """The non-finding parts of the JSON output."""
        return {
            "verdict": self.verdict,
            "first_problem": self.first_problem.to_dict() if self.first_problem else None,
            "chains": [chain.to_dict() for chain in self.chains],
            "records": self.analysis.records,
            "last_step": self.analysis.last_step,
            "sources": [
                {
                    "path": str(s.path),
                    "format": s.format,
                    "records": s.records,
                    "logged_findings": s.logged_findings,
                }
                for s in self.analysis.sources
            ],
            "skipped": [s.skipped.to_dict() for s in self.analysis.sources if s.skipped.lines],
            "coverage": {
                "series": dict(judged_series(self.analysis.series)),
                "checks_ran": sum(check.ran for check in self.checks),
                "checks": [check.to_dict() for check in self.checks],
            },
        }


def _timeline(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings, key=lambda f: (f.step if f.step is not None else -1, -f.severity.rank, f.id)
    )


def _chain_inputs(analysis: Analysis, config: RunConfig | None) -> ChainInputs:
    first: dict[str, Finding] = {}
    for finding in _timeline(analysis.findings):
        first.setdefault(finding.id, finding)
    logged = analysis.logged_facts
    planned = (config.planned_steps if config else None) or logged.get(R.PLANNED_STEPS)
    told = logged.get(R.SCHEDULER_STEPS) or (config.scheduler_steps if config else None)
    return ChainInputs(first, planned, told, config.accumulation if config else None)


def step_label(step: int | None, short: bool = False) -> str:
    """A finding's place in the run; a config finding (no step) comes before training."""
    if step is None:
        return "config" if short else "before training (config)"
    return str(step) if short else f"step {step}"


# A clean bill needs evidence of training: metrics at two or more records and at a step past
# 0. Stray numbers that never advance a step (a README that mentions "lr=0") are no-data, not
# healthy. A problem needs only one record.
MIN_RECORDS_FOR_HEALTHY = 2


def build_report(analysis: Analysis, config: RunConfig | None = None) -> Report:
    timeline = _timeline(analysis.findings)
    problems = [f for f in timeline if f.severity is not Severity.INFO]
    if problems and analysis.metric_records:
        verdict: Verdict = "sick"
    elif analysis.metric_records >= MIN_RECORDS_FOR_HEALTHY and (analysis.last_step or 0) > 0:
        verdict = "healthy"
    else:
        verdict = "no-data"
    worst = max((f.severity.rank for f in problems), default=0)
    first = next((f for f in problems if f.severity.rank == worst), None)
    chains = find_chains(_chain_inputs(analysis, config))
    checks = coverage(analysis.series, analysis.facts, analysis.crashed)
    return Report(verdict, first, timeline, chains, analysis, checks)
