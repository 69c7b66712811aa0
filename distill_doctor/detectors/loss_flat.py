"""`loss-flat`: the training loss makes no meaningful progress over a long stretch.

Judged scale-free, whatever the logging interval: the detector keeps a fixed number of
buckets (averages of consecutive records) whose width doubles as the run grows, so the window
always spans a quarter to a half of the steps seen, and bucket means beat per-step noise. The
loss is flat when, at the window's slope, training as long again would cut the loss by less
than 5% (with the slope's own uncertainty inside that band), and the window's second half is
not clearly lower than its first.

No verdict on too little training: a window must span `MIN_WINDOW_STEPS` optimizer steps and
the LR must have stopped warming up (steps 1-20 of a long run, or a warmup at a tiny LR, look
flat by their own short history). A short log (4-40 points) is judged whole in `finish()`: flat
when no point after its first fifth improves on that fifth, at a steady LR.
"""

from __future__ import annotations

import math
from functools import reduce
from operator import add
from statistics import median
from typing import NamedTuple

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS, LR, PLANNED_STEPS, STEP, Record
from distill_doctor.registry import RuleDoc, register

# Buckets judged at once; fewer records than this (a 3-epoch MNIST log) are never judged.
WINDOW_BUCKETS = 20
# Buckets kept before pairs are merged (the window doubles its width).
MAX_BUCKETS = 4 * WINDOW_BUCKETS
# "Training as long again would cut the loss by < 5%": healthy runs, even late, do better.
MAX_PROGRESS = 0.05
# The second half of the window may be at most 2% below the first (the QuALITY run: 0%).
MAX_HALF_DROP = 0.02
# Earlier buckets within 5% above the plateau's level belong to it (noise, epoch-start bumps).
PLATEAU_TOLERANCE = 0.05
# Standard errors of the slope that must fit inside the flat band: noise alone is no verdict.
CONFIDENCE_SIGMAS = 2.0
# Optimizer steps a window must span: a few dozen steps of training show no trend.
MIN_WINDOW_STEPS = 200
# The LR of a window's last bucket above 1.1x that of its first: still warming up.
WARMUP_RISE = 1.1
# Short logs: at most this many points are kept and judged whole; at least SHORT_MIN_POINTS.
SHORT_LOG = 2 * WINDOW_BUCKETS
SHORT_MIN_POINTS = 5
# "Never improves": nothing after the first fifth is 2% below its mean.
SHORT_MIN_GAIN = 0.02
SHORT_RISE = 0.10  # a last fifth 10% above the first is a rise, not a plateau

DOC = register(
    RuleDoc(
        id="loss-flat",
        code="DD205",
        kind="stream",
        severity=Severity.WARNING,
        summary="The training loss makes no meaningful progress over a long window.",
        why="A loss that stops moving means the model stopped learning: LR at 0 or too low, "
        "frozen parameters, a label/target bug that leaves nothing to learn, or a plateau "
        "that more steps will not fix.",
        fix="Check the LR curve and lr-zero/params-frozen findings; check the labels (a loss at "
        "ln(num_classes) means chance level); raise the LR or stop the run early.",
        example="loss 1.383-1.417 from step 50 to 3140 (chance level ln 4 = 1.386)",
    )
)


class Bucket(NamedTuple):
    step: float  # mean step of its records
    loss: float  # mean loss of its records
    first_step: int
    last_step: int
    lr: float | None  # the LR at its last record, when logged


class LossFlat:
    DOC = DOC
    WATCHES = (LOSS, LR, PLANNED_STEPS)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.width = 1  # records per bucket
        self.buckets: list[Bucket] = []
        # The bucket being filled: sums of steps and losses, record count, first step.
        self.step_sum, self.loss_sum, self.count = 0.0, 0.0, 0
        self.open_first: int | None = None
        self.planned = facts.planned_steps if facts and facts.planned_steps else 0
        self.reported_from: int | None = None  # first step of the flat stretch reported
        self.lr: float | None = None  # the latest LR logged
        self.short_log: list[tuple[int, float, float | None]] = []  # step, loss, lr

    def update(self, record: Record) -> list[Finding]:
        if PLANNED_STEPS in record:  # rare: test before paying for the conversion
            planned = finite(record, PLANNED_STEPS)
            if planned:
                self.planned = int(planned)
        lr = finite(record, LR)
        if lr is not None:
            self.lr = lr
        loss, step = finite(record, LOSS), step_of(record)
        if loss is None or step is None:
            return []
        if len(self.short_log) <= SHORT_LOG:
            self.short_log.append((step, loss, self.lr))
        if self.open_first is None:
            self.open_first = step
        self.step_sum += step
        self.loss_sum += loss
        self.count += 1
        if self.count < self.width:
            return []
        return self._close_bucket(step)

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: past the short log, a plain loss and LR are summed into the
        open bucket inline, and a full bucket is closed and judged; anything else goes
        through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            lrs = values[LR] if LR in shape else ()
            losses = values[LOSS] if LOSS in shape else ()
            steps = values[STEP] if losses and STEP in shape else ()
            if (
                PLANNED_STEPS in shape
                or (lrs and not values.plain(LR))
                or (losses and not (values.plain(LOSS) and steps and values.ints(STEP)))
                or (losses and len(self.short_log) <= SHORT_LOG)
            ):
                found.extend(self._each(records, start, end))
                continue
            # A run of plain records: summed into buckets a bucket at a time (the same sums,
            # in the same order), each full bucket closed at its last record's LR.
            k = 0
            while k < len(losses):
                if self.open_first is None:
                    self.open_first = steps[k]
                take = min(self.width - self.count, len(losses) - k)
                self.step_sum = reduce(add, steps[k : k + take], self.step_sum)
                self.loss_sum = reduce(add, losses[k : k + take], self.loss_sum)
                self.count += take
                k += take
                if self.count >= self.width:
                    if lrs:
                        self.lr = lrs[k - 1]
                    hits = self._close_bucket(steps[k - 1])
                    found.extend((start + k - 1, finding) for finding in hits)
            if lrs:
                self.lr = lrs[-1]
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        short_log = self.short_log
        for i in range(start, end):
            record = records[i]
            lr, loss, step = record.get(LR), record.get(LOSS), record.get(STEP)
            if (
                (lr is not None and (lr.__class__ is not float or lr - lr != 0.0))
                or (loss is not None and (loss.__class__ is not float or loss - loss != 0.0))
                or PLANNED_STEPS in record
            ):
                found.extend((i, finding) for finding in self.update(record))
                continue
            if lr is not None:
                self.lr = lr
            if loss is None:
                continue
            if step.__class__ is not int or len(short_log) <= SHORT_LOG:
                # The LR is already taken: `update` takes it again, to the same effect.
                found.extend((i, finding) for finding in self.update(record))
                continue
            if self.open_first is None:
                self.open_first = step
            self.step_sum += step
            self.loss_sum += loss
            self.count += 1
            if self.count >= self.width:
                found.extend((i, finding) for finding in self._close_bucket(step))
        return found

    def _close_bucket(self, step: int) -> list[Finding]:
        """The open bucket, full, joins the window; the window is judged."""
        n = self.count
        self.buckets.append(
            Bucket(self.step_sum / n, self.loss_sum / n, self.open_first, step, self.lr)
        )
        self.step_sum, self.loss_sum, self.count, self.open_first = 0.0, 0.0, 0, None
        if len(self.buckets) == MAX_BUCKETS:
            self._merge_pairs()
        if len(self.buckets) < WINDOW_BUCKETS:
            return []
        return self._judge(self.buckets[-WINDOW_BUCKETS:])

    def finish(self) -> list[Finding]:
        if self.reported_from is not None or not SHORT_MIN_POINTS <= len(self.short_log):
            return []
        if len(self.short_log) > SHORT_LOG:
            return []
        return self._judge_short(self.short_log)

    def _merge_pairs(self) -> None:
        pairs = zip(self.buckets[0::2], self.buckets[1::2], strict=True)
        self.buckets = [
            Bucket((a.step + b.step) / 2, (a.loss + b.loss) / 2, a.first_step, b.last_step, b.lr)
            for a, b in pairs
        ]
        self.width *= 2

    def _plateau_start(self, level: float) -> int:
        """The first step of the trailing buckets that all sit at the plateau's level: the
        window is judged late (it must be long), but the plateau may have begun before it."""
        first = self.buckets[-1].first_step
        for bucket in reversed(self.buckets):
            if bucket.loss > level * (1 + PLATEAU_TOLERANCE):
                break
            first = bucket.first_step
        return first

    def _judge(self, window: list[Bucket]) -> list[Finding]:
        if window[-1].last_step - window[0].first_step < MIN_WINDOW_STEPS:
            return []
        if _warming_up(window[0].lr, window[-1].lr):
            return []
        steps = [b.step for b in window]
        losses = [b.loss for b in window]
        fit = _slope(steps, losses)
        level = median(losses)
        if fit is None or level <= 0:
            return []
        slope, slope_error = fit
        last_step = window[-1].last_step
        # Early in a long run every loss curve looks flat by its own short history: judge by
        # the planned length when it is known.
        horizon = max(last_step, self.planned)
        progress = -slope * horizon / level
        band = CONFIDENCE_SIGMAS * slope_error * horizon / level
        half = WINDOW_BUCKETS // 2
        start, end = median(losses[:half]), median(losses[half:])
        if start <= 0:
            return []
        half_drop = (start - end) / start
        flat = abs(progress) + band < MAX_PROGRESS and half_drop < MAX_HALF_DROP
        first = window[0].first_step
        if not flat:
            # Cleared only by clear progress after the stretch already reported.
            if self.reported_from is not None and first > self.reported_from:
                if progress > 2 * MAX_PROGRESS and half_drop > MAX_HALF_DROP:
                    self.reported_from = None
            return []
        if self.reported_from is not None:
            return []
        first = self._plateau_start(start)
        return self._report(first, last_step, slope, start, end, progress, horizon)

    def _report(
        self,
        first: int,
        last_step: int,
        slope: float,
        start: float,
        end: float,
        progress: float,
        horizon: int,
    ) -> list[Finding]:
        self.reported_from = first
        gain = progress if progress > 0 else 0.0  # a slight rise is reported as no gain
        return [
            emit(
                DOC,
                first,
                f"Loss flat from step {first} to {last_step}: {start:.4g} -> {end:.4g} "
                f"(at this slope {horizon} steps of training cut it by only {gain:.1%}).",
                {
                    "first_step": first,
                    "last_step": last_step,
                    "window_steps": last_step - first,
                    "slope_per_step": slope,
                    "start": start,
                    "end": end,
                    "progress": round(progress, 4),
                },
            )
        ]

    def _judge_short(self, log: list[tuple[int, float, float | None]]) -> list[Finding]:
        """A log too short for the window, judged whole: nothing after its first fifth does
        better than that fifth, at a steady LR."""
        fifth = max(1, len(log) // 5)
        head, tail = log[:fifth], log[fifth:]
        start = sum(v for _, v, _ in head) / fifth
        end = sum(v for _, v, _ in log[-fifth:]) / fifth
        if start <= 0 or min(v for _, v, _ in tail) < start * (1 - SHORT_MIN_GAIN):
            return []
        if end > start * (1 + SHORT_RISE):
            return []  # not flat but rising: loss-divergence's
        values = [v for _, v, _ in log]
        if all(b < a for a, b in zip(values, values[1:], strict=False)):
            return []  # better at every point: slow, not flat (no noise falls that steadily)
        if _warming_up(head[0][2], log[-1][2]):
            return []
        first_step, last_step = log[0][0], log[-1][0]
        steps = [float(s) for s, _, _ in log]
        fit = _slope(steps, [v for _, v, _ in log])
        slope = fit[0] if fit else 0.0
        progress = -slope * max(last_step, self.planned) / start
        horizon = max(last_step, self.planned)
        return self._report(first_step, last_step, slope, start, end, progress, horizon)


def _warming_up(first_lr: float | None, last_lr: float | None) -> bool:
    return first_lr is not None and last_lr is not None and last_lr > WARMUP_RISE * first_lr


def _slope(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares slope of ys over xs and its standard error."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0 or n < 3:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    residual = sum((y - mean_y - slope * (x - mean_x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, math.sqrt(residual / (n - 2) / sxx)
