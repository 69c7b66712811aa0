"""`lr-zero`: the learning rate sits at 0 (or near it) while much of the run remains.

The seed's failure: a scheduler told 16x too many steps finished its schedule early and held
the LR at 0 for 94% of training. A linear decay that reaches ~0 at the very end is normal.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LR, PLANNED_STEPS, Record
from distill_doctor.registry import RuleDoc, register

# Below 1e-3 of the peak the optimizer barely moves; a cosine/linear tail crosses this only in
# the last ~0.1% of its steps.
LOW_FRACTION_OF_PEAK = 1e-3
# A dead LR with a fifth of the run left wastes that fifth; end-of-schedule tails are far less.
MIN_SHARE_LEFT = 0.2
# Records at a low LR before it counts: warmup may log lr=0 at its very first step.
CONFIRM_RECORDS = 3

DOC = register(
    RuleDoc(
        id="lr-zero",
        code="DD201",
        kind="stream",
        severity=Severity.ERROR,
        summary="The learning rate is 0 (or < 1e-3 of its peak) while much of training remains.",
        why="With no LR the optimizer does not move the weights: the rest of the run is wasted "
        "compute. The usual cause is a scheduler given the wrong total steps (e.g. micro-batches "
        "instead of optimizer steps under gradient accumulation), so it ends its schedule early.",
        fix="Give the scheduler the optimizer-step count: batches / gradient_accumulation_steps "
        "* epochs (`doctor check` computes it); check warmup is shorter than the run.",
        example="lr=0.00e+00 from step 300 of 4,687 (94% of training left)",
    )
)


class LrZero:
    DOC = DOC

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.planned = facts.planned_steps if facts else None
        self.peak = 0.0
        self.low_since: int | None = None
        self.low_records = 0
        self.low_lr = 0.0
        self.reported = False
        self.last_step: int | None = None

    def update(self, record: Record) -> list[Finding]:
        planned = finite(record, PLANNED_STEPS)
        if planned:
            self.planned = int(planned)
        lr, step = finite(record, LR), step_of(record)
        if lr is None or step is None:
            return []
        self.last_step = step
        if lr > 0 and lr >= LOW_FRACTION_OF_PEAK * self.peak:
            self.peak = max(self.peak, lr)
            self.low_since, self.low_records, self.reported = None, 0, False
            return []
        if self.low_since is None:
            self.low_since, self.low_lr = step, lr
        self.low_records += 1
        if self.reported or self.low_records < CONFIRM_RECORDS or not self.planned:
            return []
        return self._judge(self.planned)

    def finish(self) -> list[Finding]:
        if self.reported or self.low_records < CONFIRM_RECORDS or not self.last_step:
            return []
        return self._judge(self.planned or self.last_step)

    def _judge(self, total_steps: int) -> list[Finding]:
        assert self.low_since is not None
        share_left = max(0.0, (total_steps - self.low_since) / total_steps)
        if share_left < MIN_SHARE_LEFT:
            return []
        self.reported = True
        peak = "never positive" if self.peak == 0 else f"peak {self.peak:.3g}"
        return [
            emit(
                DOC,
                self.low_since,
                f"LR is {self.low_lr:.3g} from step {self.low_since} with {share_left:.0%} of "
                f"{total_steps} steps left ({peak}).",
                {
                    "step": self.low_since,
                    "lr": self.low_lr,
                    "share_left": round(share_left, 4),
                    "peak_lr": self.peak,
                    "total_steps": total_steps,
                    "planned": self.planned is not None,
                },
            )
        ]
