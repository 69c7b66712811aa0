"""`kd-signal-dead`: the KD loss is ~0 from the first steps, so the run distils nothing.

The student equals the teacher, the KD reads the wrong logits (the student's twice), or a
temperature / weight cancels the signal. The KD/CE split of the loss is logged every step for
exactly this reason: a total that looks fine can hide a KD term that contributes nothing.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS_PREFIX, Record
from distill_doctor.registry import RuleDoc, register

LOSS_KD = LOSS_PREFIX + "kd"
LOSS_CE = LOSS_PREFIX + "ce"
FIRST_RECORDS = 5  # "from the first steps": judged on the first records that carry loss_kd
# KD below this share of the CE (or this absolute value with no CE) carries no signal: a real
# student/teacher gap at any sane temperature is orders of magnitude larger.
DEAD_SHARE_OF_CE = 1e-3
DEAD_ABSOLUTE = 1e-4

DOC = register(
    RuleDoc(
        id="kd-signal-dead",
        code="DD232",
        kind="stream",
        severity=Severity.WARNING,
        summary="The KD loss is ~0 from the first steps: the run distils nothing.",
        why="A KD term near 0 from the start means the student already matches the teacher's "
        "output or the loss does not see the teacher at all: the student then trains on CE "
        "alone, and the distillation the run pays for (a teacher forward every step) is wasted.",
        fix="Check the KD inputs are student vs TEACHER logits (not the student's twice, not "
        "detached student logits), that the teacher is the intended model, and that the "
        "temperature and kd weight are sane (T in 1..8, weight > 0).",
        example="loss_kd 3.1e-07 vs loss_ce 4.21 over the first 5 steps",
    )
)


class KdSignalDead:
    DOC = DOC
    WATCHES = (LOSS_KD,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.seen = 0
        self.dead = 0
        self.worst_kd = 0.0
        self.last_ce: float | None = None
        self.first_step: int | None = None
        self.done = False

    def update(self, record: Record) -> list[Finding]:
        if self.done:
            return []
        kd, step = finite(record, LOSS_KD), step_of(record)
        if kd is None or step is None:
            return []
        ce = finite(record, LOSS_CE)
        if self.first_step is None:
            self.first_step = step
        self.seen += 1
        limit = DEAD_SHARE_OF_CE * ce if ce and ce > 0 else DEAD_ABSOLUTE
        if abs(kd) <= limit:
            self.dead += 1
            self.worst_kd = max(self.worst_kd, abs(kd))
            self.last_ce = ce
        if self.seen < FIRST_RECORDS:
            return []
        self.done = True
        if self.dead < FIRST_RECORDS:
            return []
        versus = f" vs loss_ce {self.last_ce:.3g}" if self.last_ce is not None else ""
        return [
            emit(
                DOC,
                self.first_step,
                f"loss_kd at most {self.worst_kd:.3g}{versus} over the first {FIRST_RECORDS} "
                f"steps ({self.first_step}..{step}): the KD term carries no signal.",
                {
                    "max_loss_kd": self.worst_kd,
                    "loss_ce": self.last_ce,
                    "first_step": self.first_step,
                    "last_step": step,
                },
            )
        ]

    def finish(self) -> list[Finding]:
        return []
