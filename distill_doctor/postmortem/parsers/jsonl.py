"""Generic JSON-lines metric logs: one object per line with a step-like key (`step`,
`global_step`, `iteration`, `_step`...) and metric keys (`loss`, `lr`, `eval/loss`...).
A line without a step takes the previous step + 1.

Logs repeat one set of names on every line, so what each name means (its record key, or that
it is the step) is worked out once per set of names and reused: a million lines cost a
million `json.loads` and little else."""

from __future__ import annotations

import json
from collections.abc import Iterator

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import (
    MAX_EXACT_INT,
    STEP_NAMES,
    map_metrics,
    normalise,
    to_number,
    to_step,
)
from distill_doctor.postmortem.lines import iter_text_line_lists
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "jsonl"
DESCRIPTION = 'JSON-lines metric logs ({"step": 10, "loss": 2.3, ...} per line)'
MAX_LAYOUTS = 1024  # distinct sets of names remembered; a log has a handful
_DECODER = json.JSONDecoder()
_SCAN = _DECODER.scan_once


def sniff(head: bytes, path: object) -> bool:
    first = head.lstrip().split(b"\n", 1)[0]
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and map_metrics(obj, {}) > 0


Layout = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]


def _layout(names: tuple[str, ...], options: ParseOptions) -> Layout:
    """(name, record key) of the metrics, and the names that may hold the step."""
    metrics = tuple((n, k) for n in names if (k := options.key(n)) is not None)
    steps = tuple(n for n in names if normalise(n) in STEP_NAMES)
    return metrics, steps


class Layouts:
    """What each set of names means, worked out once per set: a log repeats a few sets."""

    def __init__(self, options: ParseOptions) -> None:
        self.options = options
        self.known: dict[tuple[str, ...], Layout] = {}

    def metrics(self, obj: dict[str, object]) -> tuple[dict[str, object], int | None]:
        """(the record's metrics, the step the object states or None)."""
        names = tuple(obj)
        layout = self.known.get(names)
        if layout is None:
            if len(self.known) >= MAX_LAYOUTS:
                self.known.clear()
            layout = self.known[names] = _layout(names, self.options)
        metric_names, step_names = layout
        record: dict[str, object] = {}
        for name, key in metric_names:
            value = obj[name]
            if type(value) is float:  # the common case, without a call
                record[key] = value
            elif (number := to_number(value)) is not None:
                record[key] = number
        for name in step_names:
            value = obj[name]
            step = value if type(value) is int and 0 <= value <= MAX_EXACT_INT else to_step(value)
            if step is not None:
                return record, step
        return record, None


def load_line(line: bytes | str) -> object:
    """One JSON line; bytes that are not UTF-8 are replaced rather than refused."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    return _decode(line)


def _decode(line: str) -> object:
    """`json.loads` of one line without its per-call overhead (the scanner straight on a line
    that starts with its object, as metric lines do)."""
    if not line.startswith("{"):
        return _DECODER.decode(line)
    try:
        obj, end = _SCAN(line, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if end != len(line) and not line[end:].isspace():
        raise ValueError("extra data after the object")
    return obj


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    metrics = Layouts(options).metrics
    step = -1
    for lines in iter_text_line_lists(path, skipped):
        for line in lines:
            # `_decode` written out for the usual line, `{` first: a call per line shows here.
            try:
                if line[:1] == "{":
                    obj, end = _SCAN(line, 0)
                    if end != len(line) and not line[end:].isspace():
                        raise ValueError("extra data after the object")
                elif not line or line.isspace():
                    continue
                else:
                    obj = _DECODER.decode(line)
            except (StopIteration, ValueError, RecursionError):
                skipped.skip("not a JSON object (cut off?)", len(line))
                continue
            record, found = metrics(obj) if type(obj) is dict else ({}, None)
            if not record:
                skipped.skip("no metric in the object", len(line))
                continue
            step = found if found is not None else step + 1
            record[R.STEP] = step
            yield record
