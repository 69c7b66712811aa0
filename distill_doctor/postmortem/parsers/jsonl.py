"""Generic JSON-lines metric logs: one object per line with a step-like key (`step`,
`global_step`, `iteration`, `_step`...) and metric keys (`loss`, `lr`, `eval/loss`...).
A line without a step takes the previous step + 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.keys import STEP_NAMES, map_metrics, normalise, to_number
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "jsonl"
DESCRIPTION = 'JSON-lines metric logs ({"step": 10, "loss": 2.3, ...} per line)'


def sniff(head: bytes, path: Path) -> bool:
    first = head.lstrip().split(b"\n", 1)[0]
    try:
        obj = json.loads(first)
    except ValueError:
        return False
    return isinstance(obj, dict) and map_metrics(obj, {}) > 0


def _step_of(obj: dict[str, object]) -> int | None:
    for name, value in obj.items():
        if normalise(str(name)) in STEP_NAMES:
            number = to_number(value)
            if isinstance(number, int):
                return number
    return None


def parse(path: Path, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    step = -1
    for line in iter_lines(path, skipped):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8", errors="replace"))
        except (ValueError, RecursionError):
            skipped.skip("not a JSON object (cut off?)", len(line))
            continue
        record: dict[str, object] = {}
        if not isinstance(obj, dict) or not map_metrics(obj, record):
            skipped.skip("no metric in the object", len(line))
            continue
        found = _step_of(obj)
        step = found if found is not None else step + 1
        record[R.STEP] = step
        yield record
