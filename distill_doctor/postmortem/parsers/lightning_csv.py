"""PyTorch Lightning CSVLogger `metrics.csv`: step rows (`*_step` columns) and epoch rows
(`*_epoch` columns) interleave, with empty cells for what a row lacks; the same `step` can
appear in two rows, which are joined into one record.

When a metric is logged both ways, the `name_epoch` column (the epoch mean) is used for `name`
and its `name_step` twin is left out: mixing both into one series gives it two sampling rates,
and the per-batch samples are too noisy to show a plateau (the PINN run's loss plateau shows
in its epoch means only). The twin still reports its NaN/Inf values, at their own step: a
non-finite sample is never noise. A `name_step` column without a twin is used as is, and so
is one whose twin never holds a value (a run killed in its first epoch): a first pass over
the file finds the columns that are empty throughout (a stream, read once, trusts its
header). `--map loss=train_loss_step` names a column outright."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import normalise, to_number, to_step
from distill_doctor.postmortem.lines import iter_text_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "lightning-csv"
DESCRIPTION = "PyTorch Lightning metrics.csv (CSVLogger)"


def column_keys(
    header: list[str], options: ParseOptions | None = None, empty: frozenset[str] = frozenset()
) -> list[tuple[str | None, bool]]:
    """Each column's record key (None: not used) and whether only its non-finite values are
    kept (a `_step` column with an `_epoch` twin that holds values; `empty`: the columns
    that never do)."""
    options = options or ParseOptions()
    names = set(header) - empty
    keys: list[tuple[str | None, bool]] = []
    for name in header:
        if name == "step":
            keys.append((R.STEP, False))
            continue
        mapped = options.key_map.get(normalise(name))
        if mapped is not None:
            keys.append((mapped, False))
            continue
        base, nonfinite_only = name, False
        if name.endswith("_epoch"):
            base = name[: -len("_epoch")]
        elif name.endswith("_step"):
            base = name[: -len("_step")]
            nonfinite_only = base + "_epoch" in names
        keys.append((options.key(base), nonfinite_only))
    return keys


def _cells(line: str) -> list[str] | None:
    """One CSV line's cells; None for a line the csv module rejects (a stray CR, a NUL)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _empty_columns(path: LogInput) -> frozenset[str]:
    """The columns without a value in any row (a first pass; a stream is not read twice)."""
    if not isinstance(path, Path):
        return frozenset()
    lines = iter_text_lines(path, Skipped(str(path)))
    header = [h.strip() for h in _cells(next(lines, "")) or []]
    unseen = set(range(len(header)))
    for line in lines:
        row = _cells(line)
        if row is None or len(row) != len(header):
            continue
        unseen.difference_update([i for i in unseen if row[i]])
        if not unseen:
            break
    return frozenset(header[i] for i in unseen)


def _rows(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    empty = _empty_columns(path)
    lines = iter_text_lines(path, skipped)
    keys = column_keys([h.strip() for h in _cells(next(lines, "")) or []], options, empty)
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
        if R.STEP in record:
            step = record[R.STEP]
            step = to_step(int(step)) if isinstance(step, float) and math.isfinite(step) else step
            record[R.STEP] = to_step(step)
        if record.get(R.STEP) is not None and len(record) > 1:
            yield record
        elif any(row):
            skipped.skip("row without a step or metric", len(line))


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    pending: dict[str, object] | None = None
    for record in _rows(path, skipped, options):
        if pending is not None and pending[R.STEP] == record[R.STEP]:
            pending.update(record)
            continue
        if pending is not None:
            yield pending
        pending = record
    if pending is not None:
        yield pending
