"""Rank 0's Record under torchrun: every rank sends one row of numbers (an all_gather in
`distributed`), and `combine_rows` folds them into the record the observers and detectors get
(the keys are documented in `distill_doctor.records`). Plain arithmetic, no torch.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from distill_doctor import records as keys
from distill_doctor.records import Record

# Summed over ranks: each rank's loss is its share of the global per-token mean, and each
# rank's tokens/s is its part of the job's throughput.
SUMMED = (keys.LOSS, *(keys.LOSS_PREFIX + n for n in ("ce", "kd", "feature", "attention")))
SUMMED += (keys.TOKENS_PER_S,)
# One row per rank in the all_gather: the summed values, then these.
CHECKSUM_AT, STEP_S_AT, MEM_USED_AT, MEM_TOTAL_AT = range(len(SUMMED), len(SUMMED) + 4)


def number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def rank_row(record: Record, compute_seconds: float) -> list[float]:
    """This rank's row, from its own record: NaN where it has no value."""
    row = [number(record.get(key)) for key in SUMMED]
    row += [number(record.get(keys.CHECKSUM)), compute_seconds]
    return row + [number(record.get(keys.MEM_USED)), number(record.get(keys.MEM_TOTAL))]


def combine_rows(record: Record, rows: list[list[float]]) -> Record:
    """`record` (this rank's) with the ranks' `rows` (one per rank, in rank order) folded in."""
    out = dict(record)
    out[keys.WORLD_SIZE] = len(rows)
    for i, key in enumerate(SUMMED):
        if key in record:
            out[key] = sum(row[i] for row in rows)
    checksums = [row[CHECKSUM_AT] for row in rows]
    if all(math.isfinite(c) for c in checksums):
        middle = statistics.median(checksums)
        out[keys.RANK_CHECKSUM_SPREAD] = spread = max(checksums) - min(checksums)
        if spread > 0:  # ties (two ranks) go to the higher rank: rank 0's weights get saved
            out[keys.RANK_CHECKSUM_OUTLIER] = max(
                range(len(rows)), key=lambda r: (abs(checksums[r] - middle), r)
            )
    seconds = [row[STEP_S_AT] for row in rows]
    if all(math.isfinite(s) for s in seconds):
        slowest = seconds.index(max(seconds))
        others = seconds[:slowest] + seconds[slowest + 1 :]
        out[keys.RANK_STEP_S_MAX] = seconds[slowest]
        out[keys.RANK_STEP_S_MEDIAN] = statistics.median(others)  # what the slowest is held to
        out[keys.RANK_STEP_S_ARGMAX] = slowest
    used = [row[MEM_USED_AT] for row in rows]
    if all(math.isfinite(u) for u in used):
        worst = used.index(max(used))
        out[keys.MEM_USED], out[keys.MEM_TOTAL] = used[worst], rows[worst][MEM_TOTAL_AT]
        out[keys.RANK_MEM_ARGMAX] = worst
    bad = [str(r) for r, row in enumerate(rows) if not math.isfinite(row[SUMMED.index(keys.LOSS)])]
    if bad:
        out[keys.NONFINITE_RANKS] = ",".join(bad)
    return out
