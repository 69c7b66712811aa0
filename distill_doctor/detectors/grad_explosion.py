"""`grad-explosion`: the gradient norm jumps far above its running median, is absurd on its face
(in the millions), or grows geometrically over the log. The last two need no healthy baseline,
so a run broken from its first line, or a log of a handful of points, is judged too.

A jump only counts when it also tops the highest level the run has had as normal (once a run
memorises its data the norm falls by orders of magnitude, and a batch at 10x that tiny median
is no explosion) and stands out of the window's own spread on a log scale (per-batch norms of
a small-batch run differ by factors; 10x is then noise, not an event). Jumps less than
`WINDOW` records apart are one episode, reported once and restated with its count and worst
value when it ends.

Non-finite gradient norms are `grad-nonfinite`'s.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Sequence

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.episodes import Episodes
from distill_doctor.detectors.rolling import RollingWindow, median_of_sorted
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import GRAD_NORM, Record
from distill_doctor.registry import RuleDoc, register

WINDOW = 50  # records of the running level
MIN_POINTS = 10
# 10x the median: healthy grad norms wander 2-4x (warmup, epoch boundaries), not 10x.
EXPLOSION_FACTOR = 10.0
# Robust sigmas of ln(grad_norm) the jump must exceed: 6 sigma is ~1e-9 for Gaussian noise.
EXPLOSION_SIGMAS = 6.0
# A running level of a million: healthy norms before clipping are ~0.1-100; only an unscaled
# loss, a loss scale left in the gradients or a diverged model reaches this.
ABSURD_GRAD_NORM = 1e6
ABSURD_POINTS = 3  # a level, not one value (one value is the jump rule's)
# ... or one value four decades above the norm logged just before it: no healthy run moves
# 10,000x between two log lines, so a two-line log that does is judged without a baseline.
ABSURD_JUMP = 1e4
FEWEST_POINTS = 2  # what the absurd jump needs: a norm and the one logged before it
# Geometric growth: two decades over the log along a clean exponential (log-linear fit).
GROWTH_POINTS = 4
GROWTH_DECADES = 2.0
GROWTH_FIT_R = 0.9

DOC = register(
    RuleDoc(
        id="grad-explosion",
        code="DD208",
        kind="stream",
        severity=Severity.WARNING,
        summary="The gradient norm is far (10x) above its running median, absurd (1e6+), or "
        "grows geometrically.",
        why="An exploding gradient throws the weights far in one step and corrupts Adam's "
        "moment estimates; the loss often spikes or diverges a few steps later. A norm that "
        "is huge from the first step, or grows by a constant factor per step, means the run "
        "never had a stable start.",
        fix="Clip gradients (max_grad_norm 1.0), lower the LR or lengthen warmup, look for a "
        "loss term without a temperature or a division by a tiny count; normalise regression "
        "targets.",
        example="grad_norm 412 at step 730 vs running median 2.1 (196x)",
    )
)


class LogLinearFit:
    """Least squares of log10(value) over the record index, in O(1) state."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = self.syy = 0.0
        self.first = 0.0

    def add(self, value: float) -> None:
        self.extend((value,))

    def extend(self, values: Sequence[float]) -> None:
        """Values in order, summed in one loop (the same sums, in the same order, as adds)."""
        if not values:
            return
        if self.n == 0:
            self.first = values[0]
        n, sx, sy, sxx, sxy, syy = self.n, self.sx, self.sy, self.sxx, self.sxy, self.syy
        log10 = math.log10
        for value in values:
            x, y = float(n), log10(value)
            n += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
            syy += y * y
        self.n, self.sx, self.sy, self.sxx, self.sxy, self.syy = n, sx, sy, sxx, sxy, syy

    def slope_and_r(self) -> tuple[float, float]:
        n = self.n
        vx = self.sxx - self.sx * self.sx / n
        vy = self.syy - self.sy * self.sy / n
        cov = self.sxy - self.sx * self.sy / n
        if vx <= 0 or vy <= 0:
            return 0.0, 0.0
        return cov / vx, cov / math.sqrt(vx * vy)


class GradExplosion:
    DOC = DOC
    WATCHES = (GRAD_NORM,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.window = RollingWindow(WINDOW)
        self.normal_level = 0.0  # the highest running median: the run's normal at its peak
        self.fit = LogLinearFit()
        self.episodes = Episodes(WINDOW)
        self.records = 0

    def update(self, record: Record) -> list[Finding]:
        grad = finite(record, GRAD_NORM)
        if grad is None:
            return []
        step = step_of(record)
        if grad > 0:
            self.fit.add(grad)
        window = self.window
        full = len(window) >= MIN_POINTS
        # A jump needs grad > 10x the median, so > 10x the window's lowest value: the median
        # is taken only then, and every few records for the normal level.
        self.records += 1
        candidate = full and grad > EXPLOSION_FACTOR * window.lowest()
        median = window.median() if candidate or (full and self.records % 8 == 0) else None
        finding = self._jump(grad, step, median) if candidate and median is not None else None
        # The growth and absurd rules need a norm 100x the first or 1e6: tested inline first.
        if finding is None and grad >= self.fit.first * 10**GROWTH_DECADES:
            finding = self._growth(grad, step)
        if finding is None and grad >= ABSURD_GRAD_NORM:
            finding = self._absurd(grad, step)
        window.add(grad)
        if median is not None and median > self.normal_level:
            self.normal_level = median
        if finding is None:
            return self.episodes.quiet() if self.episodes.open is not None else []
        if self.episodes.hit(step, grad) is not None:
            return []
        return [self.episodes.start(finding, step, grad)]

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: a plain norm that cannot be a jump, growth or absurd, outside
        an episode, only moves the fit and the window (inline); anything else goes through
        `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if GRAD_NORM not in shape:
                continue  # `update` skips a record without a norm
            grads = values[GRAD_NORM]
            if not (values.plain(GRAD_NORM) and self._quiet_run(grads)):
                found.extend(self._each(records, start, end))
                continue
            # No record of the run can raise anything: the fit, the count, the normal level
            # (the median every 8th record, before its norm joins) and the window move.
            self.fit.extend(grads)
            held = len(self.window)
            # A median is at most its window's highest value: none can top the normal level
            # when the highest of the window and the run does not.
            if max(max(grads), self.window.ordered[-1]) > self.normal_level:
                seen = list(self.window.order) + list(grads)
                for k in range((-self.records - 1) % 8, len(grads), 8):  # records from 1
                    # The window before grads[k] joins: the last WINDOW values up to it.
                    level = median_of_sorted(sorted(seen[max(0, held + k - WINDOW) : held + k]))
                    if level > self.normal_level:
                        self.normal_level = level
            self.records += len(grads)
            self.window.extend(grads)
        return found

    def _quiet_run(self, grads: tuple[float, ...]) -> bool:
        """Whether no norm of the run (plain floats) can be a jump, growth or absurd, outside
        an episode, decided at once: even the run's highest stays under every bar against the
        lowest the window can hold meanwhile."""
        if not (self.fit.n and self.episodes.open is None):
            return False
        if len(self.window) < MIN_POINTS or min(grads) <= 0:
            return False
        quiet, bar = self._quiet_bar()
        lowest, highest = min(min(grads), self.window.ordered[0]), max(grads)
        return quiet and highest < bar and highest <= EXPLOSION_FACTOR * lowest

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        window, fit = self.window, self.fit
        order, ordered, size = window.order, window.ordered, window.size
        fitted: list[float] = []  # norms for the fit, summed at once before `update` needs it
        # Outside an episode, with the fit's first norm known: below `bar` a norm can only be
        # a jump, which the window's lowest value rules out first.
        quiet, bar = self._quiet_bar()
        for i in range(start, end):
            record = records[i]
            grad = record.get(GRAD_NORM)
            if grad is None:
                continue
            if (
                not quiet
                or grad.__class__ is not float
                or not 0 < grad < bar  # NaN, inf, growth or absurd: `update` tells
                or (len(order) >= MIN_POINTS and grad > EXPLOSION_FACTOR * ordered[0])
            ):
                fit.extend(fitted)
                fitted = []
                found.extend((i, finding) for finding in self.update(record))
                quiet, bar = self._quiet_bar()
                continue
            fitted.append(grad)
            self.records += 1
            if self.records % 8 == 0 and len(order) >= MIN_POINTS:
                median = window.median()
                if median > self.normal_level:
                    self.normal_level = median
            if len(order) == size:
                del ordered[bisect_left(ordered, order.popleft())]
            order.append(grad)
            insort(ordered, grad)
        fit.extend(fitted)
        return found

    def _quiet_bar(self) -> tuple[bool, float]:
        bar = min(self.fit.first * 10**GROWTH_DECADES, ABSURD_GRAD_NORM)
        return bool(self.fit.n) and self.episodes.open is None, bar

    def finish(self) -> list[Finding]:
        return self.episodes.close()

    def _jump(self, grad: float, step: int | None, median: float) -> Finding | None:
        if not (median > 0 and grad > EXPLOSION_FACTOR * median and grad > self.normal_level):
            return None
        log_sigma = self.window.log_robust_sigma()
        if log_sigma is not None and math.log(grad / median) <= EXPLOSION_SIGMAS * log_sigma:
            return None
        return emit(
            DOC,
            step,
            f"Gradient norm {grad:.4g} at step {step} is {grad / median:.0f}x its running "
            f"median {median:.4g}.",
            {
                "grad_norm": grad,
                "median": median,
                "ratio": grad / median,
                "window": len(self.window),
            },
        )

    def _growth(self, grad: float, step: int | None) -> Finding | None:
        fit = self.fit
        if fit.n < GROWTH_POINTS or grad < 10**GROWTH_DECADES * fit.first or grad <= 0:
            return None
        slope, r = fit.slope_and_r()
        if slope * (fit.n - 1) < GROWTH_DECADES or r < GROWTH_FIT_R:
            return None
        per_record = 10 ** min(slope, 300.0)  # a float's whole range in one line at most
        return emit(
            DOC,
            step,
            f"Gradient norm grows geometrically: {fit.first:.4g} -> {grad:.4g} over {fit.n} "
            f"logged steps (x{per_record:.3g} per log line) up to step {step}.",
            {
                "first_grad_norm": fit.first,
                "grad_norm": grad,
                "records": fit.n,
                "growth_per_record": per_record,
                "fit_r": round(r, 3),
            },
        )

    def _absurd(self, grad: float, step: int | None) -> Finding | None:
        if grad < ABSURD_GRAD_NORM or not self.window.order:
            return None
        before = self.window.order[-1]
        if 0 < before and grad >= ABSURD_JUMP * before:
            return emit(
                DOC,
                step,
                f"Gradient norm {grad:.4g} at step {step}, {grad / before:.3g}x the "
                f"{before:.4g} logged just before it: absurd for any healthy run (0.1-100).",
                {"grad_norm": grad, "previous_grad_norm": before, "ratio": grad / before},
            )
        if len(self.window) + 1 < ABSURD_POINTS:
            return None
        level = min(self.window.median(), grad)
        if level < ABSURD_GRAD_NORM:
            return None
        return emit(
            DOC,
            step,
            f"Gradient norm {grad:.4g} at step {step}, around {level:.3g} over the last "
            f"{len(self.window) + 1} logged steps: absurd for any healthy run (0.1-100).",
            {"grad_norm": grad, "level": level, "records": len(self.window) + 1},
        )
