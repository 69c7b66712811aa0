"""`overfitting`: the eval loss climbs from its best while the training loss keeps falling: the
model memorises its training data. One finding per episode, placed at the best evaluation (the
checkpoint to keep), restated with how far the eval loss has risen when the episode ends.

A sudden jump of the eval loss is `eval-regression`'s; a rise with a rising training loss is
no overfitting (the run diverges, or the data changed) and is left to the loss detectors.
"""

from __future__ import annotations

import math
from collections import deque
from functools import reduce
from operator import add
from statistics import median

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import EVAL_LOSS, LOSS, Record
from distill_doctor.registry import RuleDoc, register

MIN_EVALS = 5  # fewer evaluations show no trend
# The eval loss is judged by the median of its last 3 values, against the lowest such median:
# the best single evaluation is a low outlier of the eval noise, and one bad evaluation is no
# trend. The smoothed eval loss must be 10% above its best, and by more than 4 sigmas of the
# evaluation-to-evaluation noise (a small eval set is noisy).
SMOOTH = 3
MIN_RISE = 0.10
NOISE_SIGMAS = 4.0
# The noise is read from second differences of ln(eval_loss), which a steady trend (falling
# early, climbing while overfitting) leaves at 0: the median of the last 9, for white noise
# of sigma, is 0.6745 x sqrt(6) sigma.
NOISE_POINTS = 9
MEDIAN_ABS_TO_SIGMA = 0.6745 * math.sqrt(6)
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
    WATCHES = (LOSS, EVAL_LOSS)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.train_sum, self.train_count = 0.0, 0  # train losses since the previous eval
        self.train_level: float | None = None  # their mean at the latest evaluation
        self.evals = 0
        self.recent: deque[float] = deque(maxlen=SMOOTH)
        self.logs: deque[float] = deque(maxlen=3)  # ln(eval_loss) of the last evaluations
        self.second_diffs: deque[float] = deque(maxlen=NOISE_POINTS)
        # The lowest evaluation so far: (value, step, train level then): the checkpoint.
        self.best: tuple[float, int | None, float | None] = (math.inf, None, None)
        self.smoothed_best = math.inf
        self.anchor = self.best  # the best evaluation when the smoothed best was reached
        self.reported: Finding | None = None  # the open episode's first statement
        self.latest: tuple[float, int | None, float | None] = (math.inf, None, None)
        self.peak = self.latest  # the highest evaluation of the open episode

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
        step = step_of(record)
        if value > 0:
            self.logs.append(math.log(value))
            if len(self.logs) == 3:
                a, b, c = self.logs
                self.second_diffs.append(abs(c - 2 * b + a))
        self.recent.append(value)
        self.latest = (value, step, self.train_level)
        if value < self.best[0]:
            self.best = self.latest
        if len(self.recent) < SMOOTH:
            return []
        smoothed = median(self.recent)
        if smoothed < self.smoothed_best:
            ended = self._restate() if self.reported else []
            self.smoothed_best, self.anchor, self.reported = smoothed, self.best, None
            return ended
        if self.reported is not None:
            if value > self.peak[0]:
                self.peak = self.latest
            return []
        if not self._overfitting(smoothed):
            return []
        self.peak = self.latest
        self.reported = self._finding(*self.latest)
        return [self.reported]

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: train records (no eval loss) with plain losses only add to
        the train sums (a run of them at once, in order); anything else goes through
        `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if EVAL_LOSS not in shape and LOSS in shape and values.plain(LOSS):
                self.train_sum = reduce(add, values[LOSS], self.train_sum)  # += one by one
                self.train_count += end - start
                continue
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for i in range(start, end):
            record = records[i]
            loss = record.get(LOSS)
            if EVAL_LOSS in record or (
                loss is not None and (loss.__class__ is not float or loss - loss != 0.0)
            ):
                found.extend((i, finding) for finding in self.update(record))
            elif loss is not None:
                self.train_sum += loss
                self.train_count += 1
        return found

    def finish(self) -> list[Finding]:
        return self._restate() if self.reported else []

    def _overfitting(self, smoothed: float) -> bool:
        best = self.smoothed_best
        if self.evals < MIN_EVALS or best <= 0 or smoothed < best * (1 + MIN_RISE):
            return False
        sigma = median(self.second_diffs) / MEDIAN_ABS_TO_SIGMA if self.second_diffs else 0.0
        if math.log(smoothed / best) < NOISE_SIGMAS * sigma:
            return False
        train, at_best = self.train_level, self.anchor[2]
        return train is not None and at_best is not None and train < at_best * (1 - MIN_TRAIN_DROP)

    def _finding(self, value: float, step: int | None, train: float | None) -> Finding:
        best, best_step, at_best = self.anchor
        rise = value / best - 1
        return emit(
            DOC,
            best_step,
            f"Overfitting after step {best_step}: eval_loss rose {rise:.0%} from its best "
            f"{best:.4g} to {value:.4g} at step {step} while the train loss fell "
            f"{at_best:.4g} -> {train:.4g}. Keep the checkpoint of step {best_step}.",
            {
                "best_step": best_step,
                "best_eval_loss": best,
                "eval_loss": value,
                "step": step,
                "rise": round(rise, 4),
                "train_loss_at_best": at_best,
                "train_loss": train,
                "evaluations": self.evals,
            },
        )

    def _restate(self) -> list[Finding]:
        """The episode's last statement: how far the eval loss rose (its highest evaluation)."""
        return [self._finding(*self.peak)]
