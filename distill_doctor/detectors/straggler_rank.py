"""`straggler-rank`: one rank computes its steps far slower than the others, and every
collective makes the whole job wait for it: N GPUs run at the speed of the slowest.
The records time each rank's work before it waits for the others (`rank_step_s_*`): the
slowest rank, and the median of the others.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.streak import Streak
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import (
    RANK_STEP_S_ARGMAX,
    RANK_STEP_S_MAX,
    RANK_STEP_S_MEDIAN,
    WORLD_SIZE,
    Record,
)
from distill_doctor.registry import RuleDoc, register

# 1.5x the median of the other ranks: healthy ranks of one job agree within ~10-20% (same
# model, same batch size).
SLOW_FACTOR = 1.5
MIN_GAP_S = 0.05  # below this a gap is scheduling jitter on tiny steps, not a straggler
CONFIRM_RECORDS = 5  # the same rank, five records in a row: not a one-off checkpoint or GC

DOC = register(
    RuleDoc(
        id="straggler-rank",
        code="DD251",
        kind="stream",
        severity=Severity.WARNING,
        summary="One rank's step time is far above the other ranks'.",
        why="Every gradient all-reduce waits for the slowest rank: one slow GPU, a throttled "
        "node, a rank whose data loader starves or a host busy with something else makes every "
        "GPU of the job idle for the difference, step after step.",
        fix="Look at the named rank's host: GPU clocks and temperature (nvidia-smi), other "
        "processes, its data loader (num_workers, a slow disk or network file system), NUMA "
        "and CPU affinity; exclude the node or rebalance the work.",
        example="rank 5: 2.1 s per step vs a median of 0.9 s over 64 ranks for 5 records",
    )
)


class StragglerRank:
    DOC = DOC
    WATCHES = (RANK_STEP_S_MAX,)  # a verdict needs all three rank timings

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.streak = Streak(CONFIRM_RECORDS)
        self.rank: int | None = None

    def update(self, record: Record) -> list[Finding]:
        slowest, median = finite(record, RANK_STEP_S_MAX), finite(record, RANK_STEP_S_MEDIAN)
        rank = finite(record, RANK_STEP_S_ARGMAX)
        if slowest is None or median is None or rank is None:
            return []
        slow = slowest > SLOW_FACTOR * median and slowest - median > MIN_GAP_S
        if slow and int(rank) != self.rank:
            self.streak.observe(False, None)  # another rank: a new episode
        self.rank = int(rank) if slow else None
        if not self.streak.observe(slow, step_of(record)):
            return []
        first, world = self.streak.first_step, finite(record, WORLD_SIZE)
        ratio = slowest / median if median > 0 else None
        notes = ([f"{ratio:.1f}x"] if ratio is not None else []) + (
            [f"{int(world)} ranks"] if world is not None else []
        )
        noted = f" ({', '.join(notes)})" if notes else ""
        return [
            emit(
                DOC,
                first,
                f"Rank {self.rank} takes {slowest:.3g} s per step, the other ranks a median of "
                f"{median:.3g} s{noted}, for {CONFIRM_RECORDS} records from step {first}: "
                "every other rank waits for it.",
                {
                    "rank": self.rank,
                    "step_s": slowest,
                    "median_s": median,
                    "ratio": ratio,
                    "first_step": first,
                    "records": CONFIRM_RECORDS,
                },
            )
        ]

    def finish(self) -> list[Finding]:
        return []
