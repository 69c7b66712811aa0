"""`throughput-drop`: steps/s (or tokens/s) well below its running level for several records:
the run slowed down (thermal throttling, a data loader starved, memory thrashing, a
synchronisation added in the loop).
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.rolling import RollingWindow
from distill_doctor.detectors.streak import Streak
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import DEVICE, STEPS_PER_S, TOKENS_PER_S, Record
from distill_doctor.registry import RuleDoc, register

WINDOW = 50  # records of the running level (only normal-speed records enter it)
MIN_POINTS = 10
# Half the usual speed: healthy jitter (evals, checkpoint saves, variable lengths) stays
# within 20-30%.
DROP_FRACTION = 0.5
CONFIRM_RECORDS = 5  # an eval or a checkpoint save slows one or two records, not five

COMMON_FIX = (
    "Compare with memory-pressure findings; profile the data loader (num_workers, "
    "pin_memory); remove per-step host syncs (.item(), printing)"
)
# What else slows a run depends on where it runs: clocks throttle on a GPU; on a CPU the
# usual cause is other processes on the same cores, where torch's threads spin-wait.
FIX_BY_DEVICE = {
    "cuda": f"{COMMON_FIX}; check the GPU's clocks and temperature (nvidia-smi -q -d "
    "CLOCK,PERFORMANCE: thermal or power throttling).",
    "cpu": f"{COMMON_FIX}; check for other processes on the same cores (uptime, top) and "
    "give torch fewer threads than free cores (OMP_NUM_THREADS=1 on a busy machine).",
}

DOC = register(
    RuleDoc(
        id="throughput-drop",
        code="DD213",
        kind="stream",
        severity=Severity.WARNING,
        summary="Training speed stays well below its running level.",
        why="A run that slows by half takes twice the GPU hours; the cause is usually outside "
        "the model: a data loader that cannot keep up, memory near capacity (allocator "
        "retries), CPU offload, a host sync (.item(), printing) added to the loop, or "
        "thermal throttling.",
        fix=f"{COMMON_FIX}; on a GPU check its clocks (throttling), on a CPU other processes "
        "on the same cores.",
        example="0.6 steps/s from step 2000 vs a running median of 2.0 (30%)",
    )
)


class ThroughputDrop:
    DOC = DOC
    WATCHES = (STEPS_PER_S, TOKENS_PER_S, DEVICE)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.key: str | None = None  # the first speed metric seen; one scale per run
        self.device = facts.device if facts else None  # or the log's, when it says
        self.window = RollingWindow(WINDOW)
        self.streak = Streak(CONFIRM_RECORDS)

    def update(self, record: Record) -> list[Finding]:
        if isinstance(record.get(DEVICE), str):
            self.device = record[DEVICE]
        if self.key is None:
            self.key = next((k for k in (STEPS_PER_S, TOKENS_PER_S) if k in record), None)
        speed = finite(record, self.key) if self.key else None
        if speed is None:
            return []
        if len(self.window) < MIN_POINTS:
            self.window.add(speed)
            return []
        level = self.window.median()
        slow = speed < DROP_FRACTION * level
        if not slow:
            self.window.add(speed)
        if not self.streak.observe(slow, step_of(record)):
            return []
        first = self.streak.first_step
        kind = (self.device or "").split(":")[0]  # cuda:1 -> cuda
        return [
            emit(
                DOC,
                first,
                f"{self.key} {speed:.3g} is {speed / level:.0%} of its running median "
                f"{level:.3g} for {CONFIRM_RECORDS} records from step {first}.",
                {
                    "metric": self.key,
                    "value": speed,
                    "median": level,
                    "ratio": speed / level,
                    "first_step": first,
                    "records": CONFIRM_RECORDS,
                    "device": self.device,
                },
                fix=FIX_BY_DEVICE.get(kind, DOC.fix),
            )
        ]

    def finish(self) -> list[Finding]:
        return []
