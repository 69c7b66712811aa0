"""Reading numbers out of records, and turning a detector's verdict into a `Finding`.

Parsers hand over plain numbers, but a value may still be a numeric string (HF 5 logs quote
them), a bool or junk; detectors read every value through `number` so junk disables a check
instead of raising.
"""

from __future__ import annotations

import math
from typing import Any

from distill_doctor.findings import EvidenceValue, Finding, Severity
from distill_doctor.records import Record
from distill_doctor.registry import RuleDoc


def number(value: Any) -> float | None:
    """`value` as a float (NaN and Inf kept), or None when it is not a number."""
    if type(value) is float:  # the common case first: this runs for every key of every record
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def finite(record: Record, key: str) -> float | None:
    """The record's value for `key` when it is a finite number, else None."""
    value = record.get(key)
    if value is None:  # the usual miss: most records carry a few of the keys
        return None
    if type(value) is float:
        return value if value - value == 0.0 else None  # x - x is NaN for NaN and +-inf
    value = number(value)
    if value is None:
        return None
    return value if math.isfinite(value) else None


def plain_floats(values: list[Any]) -> bool:
    """Every value a finite float, decided in C: a run of them needs no test per value."""
    return set(map(type, values)) == {float} and all(map(math.isfinite, values))


def step_of(record: Record) -> int | None:
    step = record.get("step")
    if type(step) is int:  # what every parser hands over; the rest goes the long way
        return step
    value = finite(record, "step")
    return None if value is None else int(value)


def plain(value: float) -> EvidenceValue:
    """Evidence must survive JSON: NaN and Inf become the strings 'nan', 'inf', '-inf'."""
    return value if math.isfinite(value) else str(value)


def emit(
    doc: RuleDoc,
    step: int | None,
    message: str,
    evidence: dict[str, EvidenceValue],
    severity: Severity | None = None,
    fix: str | None = None,  # when this run calls for more specific advice than the doc's
) -> Finding:
    return Finding(
        id=doc.id,
        code=doc.code,
        severity=severity or doc.severity,
        message=message,
        evidence=evidence,
        fix=fix or doc.fix,
        step=step,
    )
