"""`loss-above-chance`: the cross-entropy at the start is far above ln(vocab), the loss of a
uniform guess: the model is worse than random from its first steps.

Only CE-like values count: `loss_ce`, or `loss` in a stream that never shows a loss component
(a KD total adds KD, feature and attention terms and may exceed ln(vocab) legitimately). A
`loss` is therefore judged in `finish()`, once the whole stream has shown its keys.
"""

from __future__ import annotations

import math

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns
from distill_doctor.detectors.rolling import median_of_sorted
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS, LOSS_PREFIX, VOCAB_SIZE, Record
from distill_doctor.registry import RuleDoc, register

CE = "loss_ce"
START_POINTS = 5  # the start: the median of the first CE values, robust to one odd batch
# 1.5x ln(vocab): a random init sits near 1.0x, a bad init up to ~1.2x; beyond 1.5x the
# labels, the vocabulary or the logits' scale are wrong (the RNN log: 17.7 vs 10.4 = 1.7x).
ABOVE_FACTOR = 1.5
MAX_SHAPES = 256  # record shapes remembered (a log has a handful; junk cannot grow it)

DOC = register(
    RuleDoc(
        id="loss-above-chance",
        code="DD210",
        kind="stream",
        severity=Severity.WARNING,
        summary="The cross-entropy starts far above ln(vocab), the loss of a uniform guess.",
        why="A fresh model predicts roughly uniformly, so its CE starts near ln(vocab). Far "
        "above it means wrong labels (not shifted, or from another tokenizer), a vocab size "
        "mismatch between model and tokenizer, or logits blown up at init or by a too-high LR.",
        fix="Check labels are the input ids shifted by one and share the model's tokenizer, "
        "that the vocab sizes match, and the LR and initialisation; compare the first loss "
        "with ln(vocab).",
        example="CE 17.7 at the start vs ln(33278) = 10.41 (1.7x)",
    )
)


class LossAboveChance:
    DOC = DOC
    WATCHES = (LOSS, LOSS_PREFIX + "*", VOCAB_SIZE)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.vocab = facts.vocab_size if facts else None
        self.loss_is_combined = bool(facts and facts.loss_is_combined)
        self.ce_start: list[float] = []
        self.loss_start: list[float] = []
        self.first_steps: dict[str, int | None] = {}
        self.has_components = False
        self.plain_shapes: set[tuple[str, ...]] = set()  # record shapes without a component
        self.done = False

    def update(self, record: Record) -> list[Finding]:
        if self.done:
            return []
        if VOCAB_SIZE in record:  # rare: test before paying for the conversion
            vocab = finite(record, VOCAB_SIZE)
            if vocab:
                self.vocab = int(vocab)
        if not self.has_components:
            shape = tuple(record)  # a log repeats a few shapes: look at each shape once
            if shape not in self.plain_shapes:
                self.has_components = any(key.startswith(LOSS_PREFIX) for key in shape)
                if not self.has_components and len(self.plain_shapes) < MAX_SHAPES:
                    self.plain_shapes.add(shape)
        self._collect(record, CE, self.ce_start)
        self._collect(record, LOSS, self.loss_start)
        if len(self.ce_start) < START_POINTS:
            return []
        return self._judge(self.ce_start, CE)

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: once judged, nothing; once the loss's start is collected, a
        record without a CE or a vocabulary, of a shape already seen, changes nothing;
        anything else goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for start, end, shape in runs:
            if self.done:
                break
            if (
                len(self.loss_start) >= START_POINTS
                and CE not in shape
                and VOCAB_SIZE not in shape
                and (self.has_components or shape in self.plain_shapes)
            ):
                continue  # a run that changes nothing
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for i in range(start, end):
            record = records[i]
            if self.done:
                break
            if (
                len(self.loss_start) < START_POINTS
                or CE in record
                or VOCAB_SIZE in record
                or not (self.has_components or tuple(record) in self.plain_shapes)
            ):
                found.extend((i, finding) for finding in self.update(record))
        return found

    def finish(self) -> list[Finding]:
        if self.done:
            return []
        if self.ce_start:
            return self._judge(self.ce_start, CE)
        if self.loss_start and not (self.has_components or self.loss_is_combined):
            return self._judge(self.loss_start, LOSS)
        return []

    def _collect(self, record: Record, key: str, start: list[float]) -> None:
        if len(start) >= START_POINTS:
            return
        value = finite(record, key)
        if value is None:
            return
        if not start:
            self.first_steps[key] = step_of(record)
        start.append(value)

    def _judge(self, start: list[float], key: str) -> list[Finding]:
        if not self.vocab or self.vocab < 2:
            return []
        self.done = True
        # Halves summed: the mean of two values near the float maximum must not overflow to inf.
        ce, chance = median_of_sorted(sorted(start)), math.log(self.vocab)
        if ce <= ABOVE_FACTOR * chance:
            return []
        step = self.first_steps.get(key)
        return [
            emit(
                DOC,
                step,
                f"{key} starts at {ce:.4g}, {ce / chance:.1f}x ln({self.vocab}) = {chance:.4g} "
                "(a uniform guess): the model is worse than random.",
                {
                    "field": key,
                    "ce": ce,
                    "ln_vocab": chance,
                    "vocab_size": self.vocab,
                    "ratio": ce / chance,
                    "points": len(start),
                },
            )
        ]
