"""PyTorch Lightning CSVLogger `metrics.csv`: step rows (`*_step` columns) and epoch rows
(`*_epoch` columns) interleave, with empty cells for what a row lacks; the same `step` can
appear in two rows, which are joined into one record.

When a metric is logged both ways, the `name_epoch` column (the epoch mean) is used for `name`
and its `name_step` twin is left out: mixing both into one series gives it two sampling rates,
and the per-batch samples are too noisy to show a plateau (the PINN run's loss plateau shows
in its epoch means only). The twin still reports its NaN/Inf values, at their own step: a
non-finite sample is never noise. A `name_step` column without a twin is used as is."""

from __future__ import annotations

import csv
import math
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


def column_keys(header: list[str]) -> list[tuple[str | None, bool]]:
    """Each column's record key (None: not used) and whether only its non-finite values are
    kept (a `_step` column with an `_epoch` twin)."""
    names = set(header)
    keys: list[tuple[str | None, bool]] = []
    for name in header:
        base, nonfinite_only = name, False
        if name.endswith("_epoch"):
            base = name[: -len("_epoch")]
        elif name.endswith("_step"):
            base = name[: -len("_step")]
            nonfinite_only = base + "_epoch" in names
        keys.append((R.STEP if name == "step" else record_key(base), nonfinite_only))
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
        for (key, nonfinite_only), cell in zip(keys, row, strict=True):
            number = to_number(cell) if key is not None and cell else None
            if number is not None and not (nonfinite_only and math.isfinite(number)):
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
