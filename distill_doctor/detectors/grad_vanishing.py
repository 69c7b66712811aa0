"""`grad-vanishing`: the gradient norm is ~0 for several steps while the LR is above 0: the
loss no longer reaches the trainable parameters.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.rolling import RollingWindow
from distill_doctor.detectors.streak import Streak
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import GRAD_NORM, LR, Record
from distill_doctor.registry import RuleDoc, register

WINDOW = 50  # records of the running level of healthy grad norms
# Below 1e-3 of the running level (or exactly 0) the updates are negligible; healthy norms
# fall by 10-40x over a whole run, never 1000x between neighbouring steps.
VANISH_FRACTION = 1e-3
ZERO = 1e-12  # an exact 0 printed in any format
CONFIRM_RECORDS = 5  # one tiny norm can be a batch of only ignored (-100) labels

DOC = register(
    RuleDoc(
        id="grad-vanishing",
        code="DD209",
        kind="stream",
        severity=Severity.WARNING,
        summary="The gradient norm is ~0 for several steps while LR > 0.",
        why="No gradient means no learning: the loss is detached from the student (computed "
        "under no_grad, on detached logits, or from the teacher only), every label is masked "
        "(-100), or the loss was clamped to a constant.",
        fix="Check that the loss is computed from the student's logits with grad enabled, that "
        "labels are not all -100 after truncation, and that no NaN guard replaces the loss "
        "by a constant.",
        example="grad_norm 0.0 from step 120 for 5 steps at lr 3e-5",
    )
)


class GradVanishing:
    DOC = DOC
    WATCHES = (GRAD_NORM,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.window = RollingWindow(WINDOW)
        self.streak = Streak(CONFIRM_RECORDS)

    def update(self, record: Record) -> list[Finding]:
        grad, step, lr = finite(record, GRAD_NORM), step_of(record), finite(record, LR)
        if grad is None:
            return []
        window = self.window
        # The median only when the norm is small next to the window's highest value: most
        # records are decided by that cheaper bound.
        near = len(window) and grad < VANISH_FRACTION * window.highest()
        level = window.median() if near or grad <= ZERO and len(window) else None
        tiny = grad <= ZERO or (level is not None and grad < VANISH_FRACTION * level)
        if not tiny:
            self.window.add(grad)
        if lr is not None and lr <= 0:
            tiny = False  # with no LR a zero gradient changes nothing; lr-zero reports it
        if not self.streak.observe(tiny, step):
            return []
        first = self.streak.first_step
        return [
            emit(
                DOC,
                first,
                f"Gradient norm {grad:.3g} (~0) for {CONFIRM_RECORDS} records from step {first}"
                + (f", running level {level:.3g}." if level is not None else "."),
                {
                    "grad_norm": grad,
                    "running_level": level,
                    "first_step": first,
                    "records": CONFIRM_RECORDS,
                    "lr": lr,
                },
            )
        ]

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: plain norms far from ~0, outside a streak, only join the
        window (a run of them at once, when even its lowest is far above 1e-3 of the highest
        the window can hold meanwhile); anything else goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if GRAD_NORM not in shape:
                continue  # `update` skips a record without a norm
            grads = values[GRAD_NORM]
            if not self.streak.length and values.plain(GRAD_NORM):
                lowest = min(grads)
                highest = max((max(grads), *self.window.ordered[-1:]))
                if lowest > ZERO and lowest >= VANISH_FRACTION * highest:
                    self.window.extend(grads)
                    continue
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        window, streak = self.window, self.streak
        order, ordered, size = window.order, window.ordered, window.size
        for i in range(start, end):
            record = records[i]
            grad = record.get(GRAD_NORM)
            if grad is None:
                continue
            if (
                grad.__class__ is not float
                or grad - grad != 0.0  # NaN or inf
                or grad <= ZERO
                or streak.length
                or (ordered and grad < VANISH_FRACTION * ordered[-1])
            ):
                found.extend((i, finding) for finding in self.update(record))
                continue
            if len(order) == size:
                del ordered[bisect_left(ordered, order.popleft())]
            order.append(grad)
            insort(ordered, grad)
        return found

    def finish(self) -> list[Finding]:
        return []
