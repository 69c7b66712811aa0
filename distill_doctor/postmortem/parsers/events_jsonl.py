"""The watchdog's own `events.jsonl` (format: `distill_doctor.events`): metrics and eval
events become records, the run event gives the planned steps and vocabulary, and findings
already in the log are passed on (under FINDING_KEY) so the report shows them too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.events import EVENT_TYPES
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import FINDING_KEY, ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "events-jsonl"
DESCRIPTION = "distill_doctor events.jsonl (the watchdog's own log)"
_RUN_FACTS = (R.PLANNED_STEPS, R.SCHEDULER_STEPS, R.VOCAB_SIZE, R.MEM_TOTAL)


def sniff(head: bytes, path: Path) -> bool:
    first = head.lstrip().split(b"\n", 1)[0]
    try:
        event = json.loads(first)
    except ValueError:
        return False
    return isinstance(event, dict) and event.get("type") in EVENT_TYPES


def _metrics(event: dict[str, object], step: int) -> dict[str, object]:
    record = {
        key: value
        for key, value in event.items()
        if key != "type" and isinstance(value, (int, float, str)) and not isinstance(value, bool)
    }
    record[R.STEP] = event.get(R.STEP) if isinstance(event.get(R.STEP), int) else step
    return record


def _record(event: dict[str, object], step: int) -> dict[str, object] | None:
    kind = event.get("type")
    if kind in ("metrics", "eval"):
        return _metrics(event, step)
    if kind == "run":
        facts: dict[str, object] = {
            k: event[k] for k in _RUN_FACTS if isinstance(event.get(k), int)
        }
        if isinstance(event.get(R.DEVICE), str):
            facts[R.DEVICE] = event[R.DEVICE]
        return {R.STEP: step, **facts} if facts else None
    if kind == "finding" and isinstance(event.get("id"), str):
        finding = {k: v for k, v in event.items() if k != "type"}
        return {R.STEP: event.get(R.STEP) or step, FINDING_KEY: finding}
    return None  # actions are the watchdog's answers to findings, already reported


def parse(path: Path, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    step = 0
    for line in iter_lines(path, skipped):
        if not line.strip():
            continue
        try:
            event = json.loads(line.decode("utf-8", errors="replace"))
        except (ValueError, RecursionError):
            skipped.skip("not a JSON object (cut off?)", len(line))
            continue
        record = _record(event, step) if isinstance(event, dict) else None
        if record is None:
            if not isinstance(event, dict) or event.get("type") != "action":
                skipped.skip("not an event", len(line))
            continue
        step = record[R.STEP] if isinstance(record[R.STEP], int) else step
        yield record
