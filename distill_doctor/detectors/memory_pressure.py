"""`memory-pressure`: device memory at or above ~95% of its capacity for several records in a
row: one larger batch or a fragmentation spike from an out-of-memory crash.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.streak import Streak
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import MEM_TOTAL, MEM_USED, Record
from distill_doctor.registry import RuleDoc, register

# The allocator needs headroom for fragmentation and the longest batch; past 95% a run
# lives on luck (the seed sat at 96-98%).
PRESSURE_FRACTION = 0.95
CONFIRM_RECORDS = 3  # sustained, not the blip of one long batch or an eval

DOC = register(
    RuleDoc(
        id="memory-pressure",
        code="DD212",
        kind="stream",
        severity=Severity.WARNING,
        summary="Device memory stays at or above 95% of capacity.",
        why="With no headroom, the next longer sequence or a fragmented cache ends the run "
        "with CUDA out-of-memory, often hours in; the allocator also slows down as it "
        "retries and frees caches.",
        fix="Lower the micro-batch and raise gradient accumulation, shorten max_length, "
        "enable gradient checkpointing, use top-k (subset) KD instead of full-vocabulary KD, "
        "keep the teacher in bf16/fp16.",
        example="15.7 of 16.0 GB (98%) from step 40",
    )
)


class MemoryPressure:
    DOC = DOC
    WATCHES = (MEM_USED, MEM_TOTAL)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.total = facts.mem_total_bytes if facts else None
        self.streak = Streak(CONFIRM_RECORDS)

    def update(self, record: Record) -> list[Finding]:
        total = finite(record, MEM_TOTAL)
        if total:
            self.total = total
        used, step = finite(record, MEM_USED), step_of(record)
        if used is None or not self.total:
            return []
        fraction = used / self.total
        if not self.streak.observe(fraction >= PRESSURE_FRACTION, step):
            return []
        first = self.streak.first_step
        return [
            emit(
                DOC,
                first,
                f"Memory at {fraction:.0%} of {self.total / 1e9:.1f} GB for {CONFIRM_RECORDS} "
                f"records from step {first}.",
                {
                    "fraction": round(fraction, 4),
                    "used_bytes": used,
                    "total_bytes": self.total,
                    "first_step": first,
                    "records": CONFIRM_RECORDS,
                },
            )
        ]

    def finish(self) -> list[Finding]:
        return []
