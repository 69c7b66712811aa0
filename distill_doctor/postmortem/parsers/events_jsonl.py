"""The watchdog's own `events.jsonl` (format: `distill_doctor.events`): metrics and eval
events become records, the run event gives the planned steps and vocabulary, and findings
already in the log are passed on (under FINDING_KEY) so the report shows them too."""

from __future__ import annotations

from collections.abc import Iterator

from distill_doctor import records as R
from distill_doctor.findings import Severity
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import to_number, to_step
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import FINDING_KEY, ParseOptions
from distill_doctor.postmortem.parsers.jsonl import load_line
from distill_doctor.postmortem.skipped import Skipped

NAME = "events-jsonl"
DESCRIPTION = "distill_doctor events.jsonl (the watchdog's own log)"
_RUN_FACTS = (R.PLANNED_STEPS, R.SCHEDULER_STEPS, R.VOCAB_SIZE, R.MEM_TOTAL)


_SEVERITIES = frozenset(s.value for s in Severity)


def _metrics(event: dict[str, object], step: int) -> dict[str, object]:
    record: dict[str, object] = {}
    for key, value in event.items():
        if key == "type" or isinstance(value, bool):
            continue
        if isinstance(value, str):
            record[key] = value
        elif (number := to_number(value)) is not None:
            record[key] = number
    stated = to_step(event.get(R.STEP)) if not isinstance(event.get(R.STEP), str) else None
    record[R.STEP] = stated if stated is not None else step
    return record


def _finding(event: dict[str, object]) -> dict[str, object] | None:
    """A finding the log holds, if it has the shape of one: an id, a known severity, an
    object as evidence, a step that is a step. Anything else is not trusted."""
    if not isinstance(event.get("id"), str):
        return None
    severity = event.get("severity", "warning")
    if not isinstance(severity, str) or severity not in _SEVERITIES:
        return None
    if not isinstance(event.get("evidence") or {}, dict):
        return None
    step = event.get(R.STEP)
    if step is not None and to_step(step) is None:
        return None
    return {k: v for k, v in event.items() if k != "type"}


def _record(event: dict[str, object], step: int) -> dict[str, object] | None:
    kind = event.get("type")
    if kind in ("metrics", "eval"):
        return _metrics(event, step)
    if kind == "run":
        facts: dict[str, object] = {
            k: v for k in _RUN_FACTS if (v := to_step(event.get(k))) is not None
        }
        if isinstance(event.get(R.DEVICE), str):
            facts[R.DEVICE] = event[R.DEVICE]
        return {R.STEP: step, **facts} if facts else None
    if kind == "finding":
        finding = _finding(event)
        if finding is None:
            return None
        return {R.STEP: finding.get(R.STEP) or step, FINDING_KEY: finding}
    return None  # actions are the watchdog's answers to findings, already reported


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    step = 0
    for line in iter_lines(path, skipped):
        if not line.strip():
            continue
        try:
            event = load_line(line)
        except (ValueError, RecursionError):
            skipped.skip("not a JSON object (cut off?)", len(line))
            continue
        record = _record(event, step) if isinstance(event, dict) else None
        if record is None:
            if not isinstance(event, dict) or event.get("type") != "action":
                skipped.skip("not an event (or a malformed finding)", len(line))
            continue
        step = record[R.STEP] if isinstance(record[R.STEP], int) else step
        yield record
