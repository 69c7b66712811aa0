"""`all-labels-masked`: an accumulated batch with no valid label token (every label -100).

Such a step learns nothing from CE (its per-token mean is 0/0: NaN, or 0 where a trainer
clamps it); KD and feature losses over the same masked positions vanish too. One such batch is
a data-pipeline smell (a prompt longer than max_length under completion-only loss, a collator
that masks everything); a steady share of them is a broken pipeline.

A log without token counts shows it too: a Hugging Face Trainer (transformers >= 4.46 divides
by the batch's label count) logs a loss of exactly 0 with a gradient norm of exactly 0 for a
logging window whose batches held no label token. A real cross-entropy is never exactly 0,
and a detached loss keeps its value; only "nothing to learn from" gives both zeros.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import (
    ALL_MASKED_BATCHES,
    GRAD_NORM,
    LOSS,
    STEP,
    VALID_TOKENS,
    Record,
)
from distill_doctor.registry import RuleDoc, register

# More masked batches than this share of the steps seen (and at least ESCALATE_COUNT of them)
# is no accident of one long prompt: the finding escalates, once, to an error.
ESCALATE_SHARE = 0.05
ESCALATE_COUNT = 3

DOC = register(
    RuleDoc(
        id="all-labels-masked",
        code="DD230",
        kind="stream",
        severity=Severity.WARNING,
        summary="An accumulated batch had no valid label token (all labels -100).",
        why="A batch with every label ignored gives the optimizer nothing to learn from: its "
        "CE is 0/0 (NaN, or a silent 0 where the loss is clamped) and its step is wasted. Many "
        "of them mean the data pipeline masks everything (prompts longer than max_length with "
        "completion-only loss, a collator bug, the wrong label column).",
        fix="Check the collator's labels: at least one label per example must be a real token "
        "id; raise max_length or drop examples whose answer is cut off; count valid tokens "
        "per batch before training.",
        example="step 20: 0 valid label tokens in the accumulated batch (1 so far)",
    )
)


class AllLabelsMasked:
    DOC = DOC
    WATCHES = (ALL_MASKED_BATCHES, VALID_TOKENS, LOSS, GRAD_NORM)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.count = 0  # masked batches seen
        self.steps = 0
        self.first_step: int | None = None
        self.escalated = False

    def update(self, record: Record) -> list[Finding]:
        step = step_of(record)
        if step is None:
            return []
        total = finite(record, ALL_MASKED_BATCHES)
        valid = finite(record, VALID_TOKENS)
        self.steps = max(self.steps, step)
        if total is not None:
            new = int(total) - self.count  # a cumulative counter: sparse logs still see them
        elif valid is not None:
            new = 1 if valid == 0 else 0
        else:
            new = 1 if finite(record, LOSS) == 0.0 and finite(record, GRAD_NORM) == 0.0 else 0
        if new <= 0:
            return []
        self.count += new
        if self.first_step is None:
            self.first_step = step
            return [self._finding(step, Severity.WARNING)]
        share = self.count / max(self.steps, 1)
        if not self.escalated and self.count >= ESCALATE_COUNT and share >= ESCALATE_SHARE:
            self.escalated = True
            return [self._finding(step, Severity.ERROR)]
        return []

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: a record without the masking counters whose loss is
        absent or a float other than 0 only advances the step count (inline); anything else
        goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if (
                ALL_MASKED_BATCHES not in shape
                and VALID_TOKENS not in shape
                and STEP in shape
                and values.ints(STEP)
                and (LOSS not in shape or values.nonzero_floats(LOSS))
            ):
                self.steps = max(self.steps, max(values[STEP]))
                continue
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for i in range(start, end):
            record = records[i]
            step, loss = record.get(STEP), record.get(LOSS)
            if (
                step.__class__ is not int
                or (loss is not None and (loss.__class__ is not float or loss == 0.0))
                or ALL_MASKED_BATCHES in record
                or VALID_TOKENS in record
            ):
                found.extend((i, finding) for finding in self.update(record))
            elif step > self.steps:
                self.steps = step
        return found

    def _finding(self, step: int, severity: Severity) -> Finding:
        share = self.count / max(self.steps, 1)
        what = (
            f"{self.count} accumulated batches ({share:.0%} of {self.steps} steps) had no valid "
            f"label token, the first at step {self.first_step}"
            if severity is Severity.ERROR
            else f"Step {step}: the accumulated batch had no valid label token (all -100)"
        )
        return emit(
            DOC,
            step,
            what + ".",
            {"first_step": self.first_step, "masked_batches": self.count, "steps": self.steps},
            severity,
        )

    def finish(self) -> list[Finding]:
        return []
