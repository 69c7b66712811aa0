"""Stream detectors: one small module per bad pattern, shared by the live watchdog and the
postmortem. Adding a detector = one module + one line in `DETECTORS` + its tests.

Importing this package registers every detector's doc (kind="stream", codes DD2xx).
"""

from __future__ import annotations

from collections.abc import Iterable

from distill_doctor.detectors.base import Detector, RunFacts
from distill_doctor.detectors.eval_frozen import EvalFrozen
from distill_doctor.detectors.lr_zero import LrZero
from distill_doctor.detectors.nonfinite_loss import NonfiniteLoss
from distill_doctor.findings import Finding
from distill_doctor.records import Record

DETECTORS: list[type] = [
    LrZero,
    NonfiniteLoss,
    EvalFrozen,
]


class DetectorSuite:
    """One instance of every detector, fed the same records."""

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.detectors: list[Detector] = [cls(facts) for cls in DETECTORS]

    def update(self, record: Record) -> list[Finding]:
        findings: list[Finding] = []
        for detector in self.detectors:
            findings.extend(detector.update(record))
        return findings

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for detector in self.detectors:
            findings.extend(detector.finish())
        return findings


def run_detectors(records: Iterable[Record], facts: RunFacts | None = None) -> list[Finding]:
    """Every finding of every detector over a whole stream, in the order they were raised."""
    suite = DetectorSuite(facts)
    findings: list[Finding] = []
    for record in records:
        findings.extend(suite.update(record))
    findings.extend(suite.finish())
    return findings
