"""`lr-zero`: the learning rate sits at 0 (or near it) while much of the run remains.

The seed's failure: a scheduler told 16x too many steps finished its schedule early and held
the LR at 0 for 94% of training. Not this:
- a linear decay that reaches ~0 at the very end, including an LR printed with one or two
  digits ("0.0002", "0.0001", "0") whose decay, extended, ends at the end of the log;
- an LR of 0 before it was ever positive, for a few steps: warmup from 0, or fp16 steps that
  were skipped before the scheduler first stepped (transformers with DeepSpeed warns "tried to
  get lr value before scheduler/optimizer started stepping, returning lr=0").
"""

from __future__ import annotations

import math
import re

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LR, PLANNED_STEPS, STEP, WARNING, Record
from distill_doctor.registry import RuleDoc, register

# Below 1e-3 of the peak the optimizer barely moves; a cosine/linear tail crosses this only in
# the last ~0.1% of its steps.
LOW_FRACTION_OF_PEAK = 1e-3
# A dead LR with a fifth of the run left wastes that fifth; end-of-schedule tails are far less.
MIN_SHARE_LEFT = 0.2
# Records at a low LR before it counts: warmup may log lr=0 at its very first step.
CONFIRM_RECORDS = 3
# An LR that was never positive is judged during the run only once its zeros span 5% of the
# planned steps (skipped fp16 steps at the start are a handful); otherwise in finish().
NEVER_POSITIVE_SHARE = 0.05
# transformers' message when DeepSpeed skipped the first optimizer steps (fp16 overflow).
SKIPPED_STEPS_WARNING = re.compile(r"before scheduler/optimizer started stepping", re.IGNORECASE)
# "Printed with one or two digits": such an LR shows a small positive value as 0.
COARSE_DIGITS = 2

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
    WATCHES = (LR, PLANNED_STEPS, WARNING)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.planned = facts.planned_steps if facts else None
        self.peak = 0.0
        self.low_since: int | None = None
        self.low_records = 0
        self.low_lr = 0.0
        self.reported = False
        self.last_step: int | None = None
        self.skipped_steps_warned = False
        self.coarse = True  # every positive LR so far printed with <= COARSE_DIGITS digits
        # The positive LRs since the peak, while the print is coarse: only a coarse print's
        # decay is ever judged, and a print stays fine once a value shows more digits.
        self.decay = DecayFit()

    def update(self, record: Record) -> list[Finding]:
        if PLANNED_STEPS in record:  # rare: test before paying for the conversion
            planned = finite(record, PLANNED_STEPS)
            if planned:
                self.planned = int(planned)
        if WARNING in record:
            warning = record[WARNING]
            if isinstance(warning, str) and SKIPPED_STEPS_WARNING.search(warning):
                self.skipped_steps_warned = True
        lr, step = finite(record, LR), step_of(record)
        if lr is None or step is None:
            return []
        self.last_step = step
        if lr > 0 and lr >= LOW_FRACTION_OF_PEAK * self.peak:
            if lr > self.peak:
                self.peak = lr
                self.decay = DecayFit()
            if self.coarse:
                self.decay.add(step, lr)
                if float(f"{lr:.{COARSE_DIGITS}g}") != lr:
                    self.coarse = False
            self.low_since, self.low_records, self.reported = None, 0, False
            return []
        if self.peak == 0 and self.skipped_steps_warned:
            return []  # steps skipped before the scheduler first stepped, not a dead LR
        if self.low_since is None:
            self.low_since, self.low_lr = step, lr
        self.low_records += 1
        if self.reported or self.low_records < CONFIRM_RECORDS or not self.planned:
            return []
        if self.peak == 0 and step - self.low_since < NEVER_POSITIVE_SHARE * self.planned:
            return []
        return self._judge(self.planned)

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: a plain LR within its peak's range (not a new peak, not
        low), once its print is known not to be coarse, changes only the last step and the
        low streak (a run of them at once); anything else goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if (
                not self.coarse
                and LR in shape
                and STEP in shape
                and PLANNED_STEPS not in shape
                and WARNING not in shape
                and values.plain(LR)
                and values.ints(STEP)
            ):
                lrs, low = values[LR], min(values[LR])
                if 0 < low and max(lrs) <= self.peak and low >= LOW_FRACTION_OF_PEAK * self.peak:
                    # A run inside the peak's range.
                    self.last_step = values[STEP][-1]
                    self.low_since, self.low_records, self.reported = None, 0, False
                    continue
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for i in range(start, end):
            record = records[i]
            lr, step = record.get(LR), record.get(STEP)
            if lr is None and PLANNED_STEPS not in record and WARNING not in record:
                continue
            if (
                lr.__class__ is not float
                or step.__class__ is not int
                or self.coarse
                or not (0 < lr <= self.peak and lr >= LOW_FRACTION_OF_PEAK * self.peak)
                or PLANNED_STEPS in record
                or WARNING in record
            ):
                found.extend((i, finding) for finding in self.update(record))
                continue
            self.last_step = step
            self.low_since, self.low_records, self.reported = None, 0, False
        return found

    def finish(self) -> list[Finding]:
        if self.reported or self.low_records < CONFIRM_RECORDS or not self.last_step:
            return []
        return self._judge(self.planned or self.last_step)

    def _judge(self, total_steps: int) -> list[Finding]:
        assert self.low_since is not None
        share_left = max(0.0, (total_steps - self.low_since) / total_steps)
        if share_left < MIN_SHARE_LEFT:
            return []
        if self.coarse and self.decay.zero_at() >= total_steps * (1 - MIN_SHARE_LEFT):
            return []  # a rounded print of a decay that ends with the log
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


class DecayFit:
    """Least squares of the LR over the step since its peak, in O(1) state: where a decay,
    extended, reaches 0."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = 0.0

    def add(self, step: int, lr: float) -> None:
        x = float(step)  # float sums: a junk step of 1e300 gives inf, not an OverflowError
        self.n += 1
        self.sx += x
        self.sy += lr
        self.sxx += x * x
        self.sxy += x * lr

    def zero_at(self) -> float:
        """The step where the fitted line reaches 0; -inf without a falling line."""
        n = self.n
        if n < 3:
            return -math.inf
        vx = self.sxx - self.sx * self.sx / n
        slope = (self.sxy - self.sx * self.sy / n) / vx if vx > 0 else 0.0
        mean_step, mean_lr = self.sx / n, self.sy / n
        # A falling line, not float noise on a constant LR: it must lose a tenth of its level
        # over one standard deviation of its steps.
        if -slope * math.sqrt(vx / n) < 0.1 * mean_lr:
            return -math.inf
        return mean_step - mean_lr / slope
