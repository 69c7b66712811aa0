"""`nonfinite-rank`: the loss is NaN or Inf on some ranks of a distributed run but not on the
others. One rank's NaN reaches every rank through the gradient all-reduce, so the job's loss
goes NaN too (`nonfinite-loss`); this finding names where it started: that rank's data shard
or device, not the model that all ranks share.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns
from distill_doctor.detectors.nonfinite_loss import CLEAN_RECORDS_TO_CLEAR
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS, NONFINITE_RANKS, WORLD_SIZE, Record
from distill_doctor.registry import RuleDoc, register

DOC = register(
    RuleDoc(
        id="nonfinite-rank",
        code="DD252",
        kind="stream",
        severity=Severity.ERROR,
        summary="The loss is non-finite on some ranks only, named by rank.",
        why="All ranks share one model: a NaN on one rank only comes from what differs, its data "
        "shard (an empty or corrupt example, a length the others never see) or its device (a "
        "faulty GPU, a different precision path); the all-reduce then spreads it to every rank.",
        fix="Replay the named rank's batch at that step on one process; check its data shard "
        "and, if the batch is clean, its GPU (ECC errors, dmesg Xid, a burn-in test).",
        example="loss is non-finite on rank 3 only (1 of 8 ranks) at step 1200",
    )
)


def _ranks(value: object) -> list[int] | None:
    if not isinstance(value, str):
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return [int(p) for p in parts] if parts and all(p.isdigit() for p in parts) else None


class NonfiniteRank:
    DOC = DOC
    WATCHES = (NONFINITE_RANKS, LOSS)  # a loss without the ranks key is a clean record

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.in_episode = False
        self.clean_records = 0

    def update(self, record: Record) -> list[Finding]:
        if not self.in_episode and NONFINITE_RANKS not in record:
            return []  # clean records only count towards closing an episode
        ranks = _ranks(record.get(NONFINITE_RANKS))
        world = finite(record, WORLD_SIZE)
        if ranks is None:
            if LOSS in record:
                self.clean_records += 1
                if self.clean_records >= CLEAN_RECORDS_TO_CLEAR:
                    self.in_episode = False
            return []
        self.clean_records = 0
        if self.in_episode or (world is not None and len(ranks) >= world):
            return []  # every rank: nonfinite-loss says it, no rank to name
        self.in_episode = True
        step = step_of(record)
        names = ", ".join(map(str, ranks))
        of = f" ({len(ranks)} of {int(world)} ranks)" if world is not None else ""
        return [
            emit(
                DOC,
                step,
                f"Loss is non-finite on rank{'s' if len(ranks) > 1 else ''} {names} only{of} at "
                f"step {step}: look at that rank's data and device, not the shared model.",
                {"step": step, "ranks": names, "world_size": None if world is None else int(world)},
            )
        ]

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: outside an episode only a record with the ranks key counts."""
        found: list[tuple[int, Finding]] = []
        for start, end, shape in runs:
            if not self.in_episode and NONFINITE_RANKS not in shape:
                continue
            for i in range(start, end):
                if self.in_episode or NONFINITE_RANKS in records[i]:
                    found.extend((i, finding) for finding in self.update(records[i]))
        return found

    def finish(self) -> list[Finding]:
        return []
