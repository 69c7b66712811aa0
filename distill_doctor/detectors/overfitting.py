"""`overfitting`: the eval loss climbs from its best while the training loss keeps falling: the
model memorises its training data. One finding per episode, placed at the best evaluation (the
checkpoint to keep), restated with how far the eval loss has risen when the episode ends.

A sudden jump of the eval loss is `eval-regression`'s; a rise with a rising training loss is
no overfitting (the run diverges, or the data changed) and is left to the loss detectors.
"""

from __future__ import annotations

import math

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import EVAL_LOSS, LOSS, Record
from distill_doctor.registry import RuleDoc, register

MIN_EVALS = 5  # fewer evaluations show no trend
# 10% above the best, and the evaluation before already 2% above it: eval noise is ~1%, and
# one bad evaluation is no trend.
MIN_RISE = 0.10
TREND_RISE = 0.02
# The training loss (mean over the records since the previous evaluation) 5% below its level
# at the best evaluation: it is still learning the training data.
MIN_TRAIN_DROP = 0.05

DOC = register(
    RuleDoc(
        id="overfitting",
        code="DD216",
        kind="stream",
        severity=Severity.WARNING,
        summary="The eval loss rises from its best while the training loss keeps falling.",
        why="The model is memorising its training data: every step after the best evaluation "
        "makes it worse on held-out data. The last checkpoint is not the best one.",
        fix="Keep the checkpoint of the best evaluation (load_best_model_at_end with "
        "metric_for_best_model=eval_loss), stop earlier (early stopping), or regularise: more "
        "data, fewer epochs, a lower LR, weight decay or dropout.",
        example="eval_loss 0.82 at step 400 (best), 1.48 at step 1200 (+80%) while the train "
        "loss fell 0.61 -> 0.02",
    )
)


class Overfitting:
    DOC = DOC

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.train_sum, self.train_count = 0.0, 0  # train losses since the previous eval
        self.train_level: float | None = None  # their mean at the latest evaluation
        self.evals = 0
        self.best = math.inf
        self.best_step: int | None = None
        self.train_at_best: float | None = None
        self.previous: float | None = None
        self.worst_since_best = -math.inf
        self.reported: Finding | None = None  # the open episode's first statement
        self.latest: tuple[float, int | None, float | None] = (math.inf, None, None)

    def update(self, record: Record) -> list[Finding]:
        loss = finite(record, LOSS)
        if loss is not None:
            self.train_sum += loss
            self.train_count += 1
        value = finite(record, EVAL_LOSS)
        if value is None:
            return []
        if self.train_count:
            self.train_level = self.train_sum / self.train_count
            self.train_sum, self.train_count = 0.0, 0
        self.evals += 1
        previous, self.previous = self.previous, value
        step = step_of(record)
        if value < self.best:
            ended = self._restate() if self.reported else []
            self.best, self.best_step, self.train_at_best = value, step, self.train_level
            self.worst_since_best, self.reported = -math.inf, None
            return ended
        self.worst_since_best = max(self.worst_since_best, value)
        self.latest = (value, step, self.train_level)
        if self.reported is not None or not self._overfitting(value, previous):
            return []
        self.reported = self._finding(value, step, self.train_level)
        return [self.reported]

    def finish(self) -> list[Finding]:
        return self._restate() if self.reported else []

    def _overfitting(self, value: float, previous: float | None) -> bool:
        if self.evals < MIN_EVALS or previous is None or self.best <= 0:
            return False
        if value < self.best * (1 + MIN_RISE) or previous < self.best * (1 + TREND_RISE):
            return False
        train, at_best = self.train_level, self.train_at_best
        return train is not None and at_best is not None and train < at_best * (1 - MIN_TRAIN_DROP)

    def _finding(self, value: float, step: int | None, train: float | None) -> Finding:
        rise = value / self.best - 1
        at_best = self.train_at_best
        return emit(
            DOC,
            self.best_step,
            f"Overfitting after step {self.best_step}: eval_loss rose {rise:.0%} from its best "
            f"{self.best:.4g} to {value:.4g} at step {step} while the train loss fell "
            f"{at_best:.4g} -> {train:.4g}. Keep the checkpoint of step {self.best_step}.",
            {
                "best_step": self.best_step,
                "best_eval_loss": self.best,
                "eval_loss": value,
                "step": step,
                "rise": round(rise, 4),
                "worst_eval_loss": self.worst_since_best,
                "train_loss_at_best": at_best,
                "train_loss": train,
                "evaluations": self.evals,
            },
        )

    def _restate(self) -> list[Finding]:
        """The episode's last statement: the latest evaluation and the training loss now."""
        return [self._finding(*self.latest)]
