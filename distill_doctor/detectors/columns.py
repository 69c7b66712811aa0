"""`RunColumns`: a run of records of one shape, read key by key, once for every reader.

A postmortem's batch goes to a dozen detectors and the plot's curves, and most of them want
the same few series of it (the loss, the gradient norm, the step) and the same facts about
them (all finite floats? all int steps, in order?). Each reader pulling its own values out of
the records cost a dict lookup per record per reader; a `RunColumns` takes each series once,
in C, and answers each fact once.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from typing import Any

from distill_doctor.detectors.base import ShapeRun
from distill_doctor.detectors.values import plain_floats
from distill_doctor.records import Record

# A run of records with at most this many keys has all its columns taken in one pass (a train
# record's step, loss, LR, norm, epoch...); a wider one, each column when asked for.
ALL_AT_ONCE = 8


class RunColumns:
    """The values of one run (`records[start:end]`, every record with the keys `shape`),
    one tuple per key, taken when first asked for and kept for the next reader."""

    __slots__ = ("records", "start", "end", "shape", "_columns", "_facts")

    def __init__(self, records: list[Record], start: int, end: int, shape: tuple[str, ...]):
        self.records, self.start, self.end, self.shape = records, start, end, shape
        self._columns: dict[str, tuple[Any, ...]] = {}
        self._facts: dict[tuple[str, str], bool] = {}

    def __getitem__(self, key: str) -> tuple[Any, ...]:
        """The run's values of `key`, which is in the shape (so in every record)."""
        values = self._columns.get(key)
        if values is None:
            run = self.records[self.start : self.end]
            if len(self.shape) <= ALL_AT_ONCE:
                # Every key in one pass: the records' values are in their shape's order.
                self._columns = dict(
                    zip(self.shape, zip(*map(dict.values, run), strict=True), strict=True)
                )
                return self._columns[key]
            values = tuple(map(itemgetter(key), run))
            self._columns[key] = values
        return values

    def get(self, key: str) -> tuple[Any, ...] | None:
        """The run's values of `key`, or None when its records lack the key."""
        return self[key] if key in self.shape else None

    def plain(self, key: str) -> bool:
        """Every value of `key` a finite float (the key in the shape)."""
        fact = self._facts.get((key, "plain"))
        if fact is None:
            fact = self._facts[key, "plain"] = plain_floats(self[key])
        return fact

    def nonzero_floats(self, key: str) -> bool:
        """Every value of `key` a float (NaN and inf too) other than 0.0 (a clamped loss)."""
        values = self[key]
        return (self.plain(key) or set(map(type, values)) == {float}) and 0.0 not in values

    def ints(self, key: str) -> bool:
        """Every value of `key` an int (bools excluded; the key in the shape)."""
        fact = self._facts.get((key, "ints"))
        if fact is None:
            fact = set(map(type, self[key])) == {int}
            self._facts[key, "ints"] = fact
        return fact


def run_columns(
    records: list[Record], runs: list[ShapeRun], columns: list[RunColumns] | None = None
) -> list[RunColumns]:
    """`columns` when the caller has them (one per run), else new ones."""
    if columns is not None:
        return columns
    return [RunColumns(records, start, end, shape) for start, end, shape in runs]


def with_columns(
    records: list[Record], runs: list[ShapeRun], columns: list[RunColumns] | None = None
) -> Iterator[tuple[ShapeRun, RunColumns]]:
    """Each run with its columns (the caller's, or new ones)."""
    return zip(runs, run_columns(records, runs, columns), strict=True)
