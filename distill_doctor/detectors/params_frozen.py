"""`params-frozen`: the student's parameter checksum does not change across optimizer steps
although the LR is above 0: the optimizer is not updating the weights it should.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.streak import Streak
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import CHECKSUM, LR, Record
from distill_doctor.registry import RuleDoc, register

# A float64 sum of float32 weights repeats to ~1e-12 when nothing moved; even a 1e-7 LR on a
# large model moves it by more than this.
SAME_RELATIVE_TOLERANCE = 1e-9
# The tail of a decay (lr < 1% of its peak) moves weights too little to judge; lr-zero covers it.
MIN_LR_FRACTION_OF_PEAK = 1e-2
# Unchanged across this many optimizer steps in a row: one could be a skipped fp16 step.
CONFIRM_STEPS = 3

DOC = register(
    RuleDoc(
        id="params-frozen",
        code="DD203",
        kind="stream",
        severity=Severity.ERROR,
        summary="The parameter checksum is unchanged across optimizer steps while LR > 0.",
        why="The optimizer steps but the student's weights do not move: the optimizer holds "
        "other parameters (the teacher, a copy), requires_grad is off, every step is skipped "
        "by the fp16 GradScaler, or the gradients are zero.",
        fix="Build the optimizer from the student's trainable parameters after any wrapping; "
        "check requires_grad, and that scaler.step() is not skipping every step (loss scale "
        "collapsing to 0).",
        example="checksum 1234.56789 unchanged from step 200 to 260 at lr 3e-5",
    )
)


class ParamsFrozen:
    DOC = DOC
    # The peak LR is read from the records that carry a checksum: a log without checksums
    # (most logs of other tools) never wakes this detector.
    WATCHES = (CHECKSUM,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.previous: tuple[int, float] | None = None  # (step, checksum)
        self.streak = Streak(CONFIRM_STEPS)
        self.peak_lr = 0.0

    def update(self, record: Record) -> list[Finding]:
        lr = finite(record, LR)
        if lr is not None and lr > self.peak_lr:
            self.peak_lr = lr
        if CHECKSUM not in record:  # most logs have an LR and no checksum
            return []
        checksum, step = finite(record, CHECKSUM), step_of(record)
        if checksum is None or step is None:
            return []
        previous, self.previous = self.previous, (step, checksum)
        if previous is None or step <= previous[0]:
            return []
        if record.get("update_skipped"):  # the watchdog vetoed this update: no move expected
            self.streak.observe(False, step)
            return []
        same = abs(checksum - previous[1]) <= SAME_RELATIVE_TOLERANCE * abs(checksum)
        frozen = same and lr is not None and lr > 0 and lr >= MIN_LR_FRACTION_OF_PEAK * self.peak_lr
        if not self.streak.observe(frozen, step):
            return []
        first = self.streak.first_step
        return [
            emit(
                DOC,
                first,
                f"Parameter checksum {checksum:.10g} unchanged at steps {first}..{step} "
                f"although lr={lr:.3g}.",
                {"first_step": first, "last_step": step, "checksum": checksum, "lr": lr},
            )
        ]

    def finish(self) -> list[Finding]:
        return []
