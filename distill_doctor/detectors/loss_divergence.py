"""`loss-divergence`: the loss trends up and ends above where it started: training is making
the model worse (LR too high, a broken loss term, fp16 overflow building up).

Three ways to see it, the last two without a healthy baseline (a run broken from its first
line, or a log of a handful of points):
- the running median climbs above the starting level and is still rising (long logs);
- a short log (fewer than `SHORT_LOG` points) whose last fifth sits well above its first, at a
  steady LR (a loss that rises while the LR warms up is not this), judged in `finish()`;
- a loss orders of magnitude above any normalised loss (1e6+) from the start;
- an early blow-up: within its first records the loss jumps to twice its starting level (and
  by more than one unit) and stays there for several records: the LR far too high.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from statistics import median

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.rolling import EXACT_HALVES, RollingWindow, median_of_sorted
from distill_doctor.detectors.values import emit, finite, plain, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS, LR, Record
from distill_doctor.registry import RuleDoc, register

BASELINE_POINTS = 10  # the starting level: median of the first records
WINDOW = 20  # records of the recent level; a median, so single spikes do not count
# The recent level must exceed the start by 10%: KD losses wobble by a few percent early on.
ABOVE_START = 0.10
# And by more than the noise of two medians: per-batch losses of a small-batch run differ by
# factors, and the median of 10 such values wanders by tens of percent. Standard errors of
# ln(median) (1.25 sigma / sqrt(n) each) the rise must exceed:
NOISE_SIGMAS = 3.0
# And still be rising: the second half of the window above the first by 2%.
MIN_RISE = 0.02
# The level moves slowly: judging every 5th record finds the same episodes at a fifth of the cost.
JUDGE_EVERY = 5
# A run of plain losses is passed this many judged records at a time when bounds on their
# levels show `_judge` would do nothing at any of them.
BLOCK_JUDGED = 4
# Logs of at most this many points keep them all and are judged as a whole in finish().
SHORT_LOG = 2 * (BASELINE_POINTS + WINDOW)
SHORT_MIN_POINTS = 4
SHORT_RISE = 0.10  # the last fifth 10% above the first
STEADY_LR = 1.5  # the LR of the last fifth at most 1.5x that of the first: no warmup
# A loss of a million: a per-token CE is at most ~12, an MSE on standardised targets ~1, even a
# KD loss summed over tokens is thousands; beyond this the loss is unscaled or has diverged.
ABSURD_LOSS = 1e6
# Early blow-up: judged over the first EARLY_RECORDS against the first loss (an LR far too
# high blows up at the first update, so any later start would already be the blow-up);
# BLOWUP_RECORDS in a row at BLOWUP_FACTOR times the start and BLOWUP_MARGIN above it (a loss
# of 1e-4 doubling is noise, and one odd batch is not a run).
EARLY_RECORDS = 50
BLOWUP_FACTOR = 2.0
BLOWUP_MARGIN = 1.0
BLOWUP_RECORDS = 3

DOC = register(
    RuleDoc(
        id="loss-divergence",
        code="DD207",
        kind="stream",
        severity=Severity.ERROR,
        summary="The loss trends upward and rises above its starting level.",
        why="A diverging loss means each update makes the model worse: the LR is too high for "
        "the batch size, warmup is too short, a loss term is blowing up, or fp16 overflows.",
        fix="Lower the LR (2-10x) or lengthen warmup, clip gradients, check each loss "
        "component's curve to find the one that grows; prefer bf16 over fp16.",
        example="loss median 24.1 at step 900 vs 18.0 at the start, rising since step 500",
    )
)


class LossDivergence:
    DOC = DOC
    WATCHES = (LOSS,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.baseline_points: list[float] = []
        self.baseline_level: float | None = None  # their median, once taken
        self.window = RollingWindow(WINDOW)
        self.lowest: tuple[float, int | None] | None = None  # (level, step): the trough
        self.diverging = False
        self.seen = 0
        self.short_log: list[tuple[int | None, float, float | None]] = []  # step, loss, lr
        self.absurd_reported = False
        self.start_log_sigma: float | None = None  # the spread of ln(loss) at the start
        self.blowup_run = 0  # records in a row far above the start (early blow-up)
        self.blowup_first: int | None = None

    def update(self, record: Record) -> list[Finding]:
        loss, step = finite(record, LOSS), step_of(record)
        if loss is None:
            return []
        if len(self.short_log) <= SHORT_LOG:
            self.short_log.append((step, loss, finite(record, LR)))
        absurd: list[Finding] = []
        if len(self.baseline_points) < BASELINE_POINTS:
            self.baseline_points.append(loss)
            if len(self.baseline_points) == SHORT_MIN_POINTS:
                absurd = self._absurd()
        self.window.add(loss)
        self.seen += 1
        if absurd:
            return absurd
        blowup = self._early_blowup(loss, step)
        if blowup:
            return blowup
        if len(self.window) < WINDOW or self.seen % JUDGE_EVERY:
            return []
        return self._judge(step)

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: past the start (the short log, the baseline and the early
        blow-up window), a run of plain losses is judged every JUDGE_EVERY-th record
        (`_plain_run`); anything else goes through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if LOSS not in shape:
                continue  # `update` skips a record without a loss
            losses = values[LOSS]
            held = list(self.window.order)
            if self._started() and values.plain(LOSS) and 0.0 not in losses and 0.0 not in held:
                found.extend(self._plain_run(records, start, held, losses))
            else:
                found.extend(self._each(records, start, end))
        return found

    def _plain_run(
        self, records: list[Record], start: int, held: list[float], losses: tuple[float, ...]
    ) -> list[tuple[int, Finding]]:
        """Plain losses (no 0.0, nor in the window `held`: no 0.0/-0.0 to order) past the
        start. The window is only needed at the judged records: set there from the run's
        values (the same lists as adds), once at its end. A block of judged records whose
        levels are bounded inside the trough and the start's bar (`_quiet_levels`) changes
        nothing and is passed at once."""
        found: list[tuple[int, Finding]] = []
        seen, values = self.seen, held + list(losses)
        judged = range((-seen - 1) % JUDGE_EVERY, len(losses), JUDGE_EVERY)
        for first in range(0, len(judged), BLOCK_JUDGED):
            block = judged[first : first + BLOCK_JUDGED]
            # The window after losses[k] joins ends at values[len(held) + k + 1].
            low, high = len(held) + block[0] + 1 - WINDOW, len(held) + block[-1] + 1
            if low >= 0 and self._quiet_levels(values[low:high]):
                continue
            for k in block:
                last = len(held) + k + 1
                if last < WINDOW:
                    continue
                ordered = sorted(values[last - WINDOW : last])
                level = median_of_sorted(ordered)
                if level > self._baseline() * (1 + ABOVE_START):  # `_judge` reads the window
                    self.window.order.clear()
                    self.window.order.extend(values[last - WINDOW : last])
                    self.window.ordered[:] = ordered
                self.seen = seen + k + 1
                hits = self._judge(step_of(records[start + k]), level)
                found.extend((start + k, finding) for finding in hits)
        self.seen = seen + len(losses)
        self.window.order.clear()
        self.window.extend(values)  # ends as the last WINDOW values
        return found

    def _quiet_levels(self, stretch: list[float]) -> bool:
        """Whether `_judge` does nothing at any window of WINDOW values of `stretch`, outside
        an episode: every level (the median of such a window, between the stretch's
        WINDOW/2-th lowest and WINDOW/2-th highest value) stays at or above the trough and
        under the start's bar."""
        if self.lowest is None or self.diverging:
            return False
        ordered = sorted(stretch)
        lower = ordered[WINDOW // 2 - 1]
        upper = ordered[WINDOW // 2 + len(stretch) - WINDOW]
        return (
            lower > EXACT_HALVES
            and lower >= self.lowest[0]
            and upper <= self._baseline() * (1 + ABOVE_START)
        )

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        window = self.window
        order, ordered, size = window.order, window.ordered, window.size
        started = self._started()
        for i in range(start, end):
            record = records[i]
            loss = record.get(LOSS)
            if loss is None:
                continue
            if not started or loss.__class__ is not float or loss - loss != 0.0:
                found.extend((i, finding) for finding in self.update(record))
                started = self._started()
                continue
            if len(order) == size:
                del ordered[bisect_left(ordered, order.popleft())]
            order.append(loss)
            insort(ordered, loss)
            self.seen += 1
            if len(order) >= WINDOW and not self.seen % JUDGE_EVERY:
                found.extend((i, finding) for finding in self._judge(step_of(record)))
        return found

    def _baseline(self) -> float:
        """The starting level: the median of the first records (fixed once they are all in)."""
        if len(self.baseline_points) < BASELINE_POINTS:
            return median(self.baseline_points)
        if self.baseline_level is None:
            self.baseline_level = median(self.baseline_points)
        return self.baseline_level

    def _started(self) -> bool:
        """Past the start: the short log, the baseline and the early blow-up window are
        complete (and stay so), so a loss only moves the window."""
        return (
            self.seen >= EARLY_RECORDS
            and len(self.short_log) > SHORT_LOG
            and len(self.baseline_points) >= BASELINE_POINTS
        )

    def _judge(self, step: int | None, level: float | None = None) -> list[Finding]:
        """The running level (the window's median, when the caller has it) against the start,
        every JUDGE_EVERY records."""
        if level is None:
            level = self.window.median()
        if self.lowest is None or level < self.lowest[0]:
            self.lowest = (level, step)
        baseline = self._baseline()
        if level <= baseline:
            self.diverging = False  # back below the start: a new rise is a new episode
        if level <= baseline * (1 + ABOVE_START) or self._within_noise(level, baseline):
            return []
        if self.diverging or not self._rising():
            return []
        self.diverging = True
        trough, trough_step = self.lowest
        return [
            emit(
                DOC,
                trough_step,
                f"Loss diverging: median {level:.4g} at step {step} vs {baseline:.4g} at the "
                f"start, rising from {trough:.4g} at step {trough_step}.",
                {
                    "start_level": baseline,
                    "level": level,
                    "trough": trough,
                    "trough_step": trough_step,
                    "step": step,
                },
            )
        ]

    def _early_blowup(self, loss: float, step: int | None) -> list[Finding]:
        if self.diverging or self.seen > EARLY_RECORDS or self.seen < 2:
            return []
        start = self.baseline_points[0]
        if start <= 0 or loss < max(BLOWUP_FACTOR * start, start + BLOWUP_MARGIN):
            self.blowup_run, self.blowup_first = 0, None
            return []
        self.blowup_run += 1
        self.blowup_first = self.blowup_first if self.blowup_first is not None else step
        if self.blowup_run < BLOWUP_RECORDS:
            return []
        self.diverging = True  # one episode: the median's later view of it is no news
        return [
            emit(
                DOC,
                self.blowup_first,
                f"Loss blew up early: {loss:.4g} at step {step}, {loss / start:.1f}x its "
                f"starting level {start:.4g}, for {self.blowup_run} records from step "
                f"{self.blowup_first}.",
                {
                    "start_level": start,
                    "level": loss,
                    "ratio": round(loss / start, 3),
                    "first_step": self.blowup_first,
                    "step": step,
                },
            )
        ]

    def finish(self) -> list[Finding]:
        if self.diverging or self.absurd_reported:
            return []
        if len(self.baseline_points) < SHORT_MIN_POINTS:
            absurd = self._absurd()
            if absurd:
                return absurd
        if SHORT_MIN_POINTS <= len(self.short_log) <= SHORT_LOG:
            return self._short_rise()
        return []

    def _absurd(self) -> list[Finding]:
        level = median(self.baseline_points) if self.baseline_points else 0.0
        if abs(level) < ABSURD_LOSS:
            return []
        self.absurd_reported = True
        step = self.short_log[0][0] if self.short_log else None
        return [
            emit(
                DOC,
                step,
                f"Loss is {level:.4g} from the start: orders of magnitude above any normalised "
                "loss (a cross-entropy is at most ~12, an MSE on standardised targets ~1). The "
                "targets are unscaled, a term is summed instead of averaged, or the run "
                "diverged at once.",
                {"start_level": plain(level), "points": len(self.baseline_points), "step": step},
            )
        ]

    def _short_rise(self) -> list[Finding]:
        """A short log judged whole: the last fifth well above the first at a steady LR."""
        log = self.short_log
        fifth = max(1, len(log) // 5)
        first = sum(v for _, v, _ in log[:fifth]) / fifth
        last = sum(v for _, v, _ in log[-fifth:]) / fifth
        if first <= 0 or last <= first * (1 + SHORT_RISE):
            return []
        first_lr = [lr for _, _, lr in log[:fifth] if lr is not None]
        last_lr = [lr for _, _, lr in log[-fifth:] if lr is not None]
        if first_lr and last_lr and max(last_lr) > STEADY_LR * max(max(first_lr), 0.0):
            return []  # the LR was still warming up: a rising loss then is common
        step, end_step = log[0][0], log[-1][0]
        return [
            emit(
                DOC,
                step,
                f"Loss rises over the whole log: {first:.4g} in its first fifth -> {last:.4g} "
                f"in its last ({last / first - 1:+.0%}) from step {step} to {end_step}, "
                f"{len(log)} points.",
                {
                    "start_level": plain(first),
                    "level": plain(last),
                    "points": len(log),
                    "first_step": step,
                    "step": end_step,
                },
            )
        ]

    def _within_noise(self, level: float, baseline: float) -> bool:
        """The spread is the larger of the window's and the start's: a few points give a
        spread estimate that is itself noisy, and the start is the noisier end to miss."""
        log_sigma = self.window.log_robust_sigma()
        if log_sigma is None or baseline <= 0:
            return False
        if self.start_log_sigma is None:
            start = RollingWindow(BASELINE_POINTS)
            for value in self.baseline_points:
                start.add(value)
            self.start_log_sigma = start.log_robust_sigma() or 0.0
        log_sigma = max(log_sigma, self.start_log_sigma)
        error = 1.25 * log_sigma * math.sqrt(1 / len(self.baseline_points) + 1 / WINDOW)
        return math.log(level / baseline) <= NOISE_SIGMAS * error

    def _rising(self) -> bool:
        recent = self.window.values()
        half = len(recent) // 2
        first, second = median(recent[:half]), median(recent[half:])
        return second > first * (1 + MIN_RISE)
