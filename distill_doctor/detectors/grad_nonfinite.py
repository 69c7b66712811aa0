"""`grad-nonfinite`: the gradient norm is NaN or Inf.

Two different stories: a norm that is non-finite at every logged step means no update ever
used a real gradient (fp16 overflow on every step, a NaN in the weights or the data, a loss
scale stuck at its floor): the run trains nothing (error). A few non-finite norms among finite
ones, with a finite loss, are most likely fp16/AMP steps that the GradScaler skipped by design
(warning: harmless when rare, a sign of trouble when frequent).

A step whose loss is non-finite too is left to `nonfinite-loss` (the loss explains the
gradient). Streams: reported once a streak of non-finite norms is confirmed (the live watchdog
hears of it at once), restated in `finish()` with the run's totals; scattered ones are
reported there.
"""

from __future__ import annotations

import math

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.values import emit, number, plain, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import GRAD_NORM, LOSS, Record
from distill_doctor.registry import RuleDoc, register

# Non-finite norms in a row before it is a persistent failure, not skipped steps: the fp16
# GradScaler halves its scale after each overflow, so skips come alone or in short bursts.
CONFIRM_RECORDS = 5
# More than this share of the logged steps non-finite is no longer "a few skipped steps".
MAX_SKIPPED_SHARE = 0.25
MIN_FREQUENT = 3  # one or two skips in a short log are still "a few"

DOC = register(
    RuleDoc(
        id="grad-nonfinite",
        code="DD215",
        kind="stream",
        severity=Severity.ERROR,
        summary="The gradient norm is NaN or Inf (every step: error; a few steps: warning).",
        why="A non-finite gradient cannot update the weights. On every step it means the run "
        "trains nothing: fp16 overflow on each step, a NaN in the weights, inputs or labels, "
        "or a loss scale that collapsed. On a few steps with a finite loss it is usually the "
        "fp16/AMP GradScaler skipping the update by design, which is harmless when rare.",
        fix="Every step: train in bf16 or fp32 (or fix the fp16 loss scaling), look for NaN/Inf "
        "in inputs and labels, lower the LR, clip gradients; check that the weights loaded "
        "finite. A few steps: nothing to do if rare; if frequent, lower the LR or use bf16.",
        example="grad_norm inf at all 130 logged steps (3-519) while the loss stays 2.4",
    )
)


class GradNonfinite:
    DOC = DOC
    WATCHES = (GRAD_NORM,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.records = 0  # records with a grad_norm
        self.bad = 0
        self.bad_with_finite_loss = 0
        self.streak = 0
        self.streak_start: int | None = None
        self.first_bad: int | None = None
        self.last_bad: int | None = None
        self.persistent: Finding | None = None  # the live alarm, restated by finish()
        self.worst = "nan"

    def update(self, record: Record) -> list[Finding]:
        raw = record.get(GRAD_NORM)
        if raw is None:
            return []
        grad = raw if type(raw) is float else number(raw)
        if grad is None:
            return []
        self.records += 1
        if math.isfinite(grad):
            self.streak = 0
            return []
        loss = number(record.get(LOSS))
        if loss is not None and not math.isfinite(loss):
            # A NaN loss explains the NaN gradient: that step is nonfinite-loss's story.
            self.records -= 1
            return []
        step = step_of(record)
        self.bad += 1
        self.streak += 1
        if self.streak == 1:
            self.streak_start = step
        if loss is not None:
            self.bad_with_finite_loss += 1
        if math.isinf(grad):
            self.worst = "inf"
        if self.first_bad is None:
            self.first_bad = step
        self.last_bad = step
        if self.persistent is None and self.streak == CONFIRM_RECORDS:
            return [self._persistent(step)]
        return []

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: finite float norms are only counted (a run of them at once);
        anything else goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if GRAD_NORM not in shape:
                continue  # `update` skips a record without a norm
            if values.plain(GRAD_NORM):
                self.records += end - start
                self.streak = 0
                continue
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for i in range(start, end):
            record = records[i]
            grad = record.get(GRAD_NORM)
            if grad is None:
                continue
            if grad.__class__ is float and grad - grad == 0.0:
                self.records += 1
                self.streak = 0
            else:
                found.extend((i, finding) for finding in self.update(record))
        return found

    def finish(self) -> list[Finding]:
        if not self.bad:
            return []
        every = self.bad == self.records
        frequent = self.bad >= MIN_FREQUENT and self.bad > MAX_SKIPPED_SHARE * self.records
        if self.persistent is not None or every or frequent:
            return [self._summary(Severity.ERROR, every)]
        return [self._summary(Severity.WARNING, every)]

    def _persistent(self, step: int | None) -> Finding:
        """The live alarm: CONFIRM_RECORDS non-finite norms in a row."""
        from_start = self.records == self.streak
        start = self.streak_start
        since = "from the first logged step" if from_start else "in a row"
        self.persistent = emit(
            DOC,
            start,
            f"grad_norm is {self.worst} on {self.streak} logged steps {since} (step {start} "
            f"to {step}): no update uses a real gradient.",
            {"first_step": start, "last_step": step, "count": self.streak, "worst": self.worst},
        )
        return self.persistent

    def _summary(self, severity: Severity, every: bool) -> Finding:
        step = self.persistent.step if self.persistent else self.first_bad
        share = self.bad / self.records
        evidence = {
            "first_step": self.first_bad,
            "last_step": self.last_bad,
            "count": self.bad,
            "logged_steps": self.records,
            "share": round(share, 4),
            "with_finite_loss": self.bad_with_finite_loss,
            "worst": plain(float(self.worst)),
        }
        if every:
            message = (
                f"grad_norm is {self.worst} at every one of the {self.records} logged steps "
                f"(steps {self.first_bad} to {self.last_bad}): no update ever used a "
                "real gradient, so the run trained nothing."
            )
        elif severity is Severity.ERROR:
            message = (
                f"grad_norm is non-finite ({self.worst}) at {self.bad} of {self.records} logged "
                f"steps ({share:.0%}), from step {self.first_bad} to {self.last_bad}: "
                "too many to be occasional skipped steps."
            )
        else:
            loss_note = " with a finite loss" if self.bad_with_finite_loss == self.bad else ""
            message = (
                f"grad_norm is non-finite ({self.worst}) at {self.bad} of {self.records} logged "
                f"steps{loss_note} (first at step {self.first_bad}, last at "
                f"{self.last_bad}): most likely fp16/AMP steps the GradScaler skipped, "
                "harmless when rare."
            )
        return emit(DOC, step, message, evidence, severity)
