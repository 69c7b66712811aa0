"""PyTorch Lightning CSVLogger `metrics.csv`: step rows (`*_step` columns) and epoch rows
(`*_epoch` columns) interleave, with empty cells for what a row lacks; the same `step` can
appear in two rows, which are joined into one record.

`name_step` columns are the per-step metric `name`; a `name_epoch` column is used for `name`
only when the file has no `name_step` twin (an epoch mean beside the step values would give
one series two sampling rates)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.keys import record_key, to_number
from distill_doctor.postmortem.lines import iter_text_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "lightning-csv"
DESCRIPTION = "PyTorch Lightning metrics.csv (CSVLogger)"


def sniff(head: bytes, path: Path) -> bool:
    header = head.split(b"\n", 1)[0].strip().lower().split(b",")
    return len(header) > 1 and (b"step" in header or b"epoch" in header)


def column_keys(header: list[str]) -> list[str | None]:
    """The record key of each column, or None for columns that are not used."""
    names = set(header)
    keys: list[str | None] = []
    for name in header:
        base = name
        if name.endswith("_step"):
            base = name[: -len("_step")]
        elif name.endswith("_epoch"):
            base = name[: -len("_epoch")]
            if base + "_step" in names:
                keys.append(None)
                continue
        keys.append(R.STEP if name == "step" else record_key(base))
    return keys


def _cells(line: str) -> list[str] | None:
    """One CSV line's cells; None for a line the csv module rejects (a stray CR, a NUL)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _rows(path: Path, skipped: Skipped) -> Iterator[dict[str, object]]:
    lines = iter_text_lines(path, skipped)
    keys = column_keys([h.strip() for h in _cells(next(lines, "")) or []])
    for line in lines:
        row = _cells(line)
        if row is None or len(row) != len(keys):
            skipped.skip("row that is not CSV of the header's width", len(line))
            continue
        record = {}
        for key, cell in zip(keys, row, strict=True):
            number = to_number(cell) if key is not None and cell else None
            if number is not None:
                record[key] = number
        if isinstance(record.get(R.STEP), float):
            record[R.STEP] = int(record[R.STEP])
        if isinstance(record.get(R.STEP), int) and len(record) > 1:
            yield record
        elif any(row):
            skipped.skip("row without a step or metric", len(line))


def parse(path: Path, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    pending: dict[str, object] | None = None
    for record in _rows(path, skipped):
        if pending is not None and pending[R.STEP] == record[R.STEP]:
            pending.update(record)
            continue
        if pending is not None:
            yield pending
        pending = record
    if pending is not None:
        yield pending
