"""`loss-spike`: one loss far above the recent ones, judged robustly: distance from the rolling
median in units of the window's IQR-based sigma, and a minimum relative jump.

Not Megatron's "10x the early max" rule: a KD loss starts high (20+) and falls by 5-10x, so
that rule would never fire on a KD run after its first steps. But the jump must matter at the
run's own scale: once a run memorises its data its loss sits near 1e-4, and a batch at 1e-3 is
+900% without being a problem, so a spike must also rise by a share of the starting loss.
A positive loss is also judged on a log scale: per-batch losses of a small-batch run differ by
factors, and a jump must stand out of that spread too. Spikes less than `WINDOW` records apart
are one episode, restated with its count when it ends.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from statistics import median as median_of

from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.episodes import Episodes
from distill_doctor.detectors.rolling import EXACT_HALVES, RollingWindow
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS, Record
from distill_doctor.registry import RuleDoc, register

WINDOW = 50  # records: long enough for a stable median, short enough to follow the decay
MIN_POINTS = 20  # fewer points give no usable spread
# Robust z above which a value is a spike: Gaussian noise reaches 6 sigma once in ~1e9 draws.
SPIKE_SIGMAS = 6.0
# And at least 20% above the median, so a near-constant loss (tiny sigma) is not flagged for
# jitter; healthy KD losses vary by a few percent per step.
MIN_RELATIVE_JUMP = 0.2
# And by at least 2% of the starting loss (the median of its first records): the scale of the
# run, so a loss that has fallen 10,000x is not flagged for its noise.
START_POINTS = 20
MIN_JUMP_OF_START = 0.02
# A run of plain losses is decided a block at a time: a block whose highest loss stays under
# BLOCK_BAR x the lowest median its windows can have cannot hold a spike (the bar is the 20%
# jump less a margin far above float rounding).
BLOCK = WINDOW // 2
BLOCK_BAR = 1 + 0.95 * MIN_RELATIVE_JUMP

DOC = register(
    RuleDoc(
        id="loss-spike",
        code="DD206",
        kind="stream",
        severity=Severity.WARNING,
        summary="A loss value far above its rolling median (robust z-score).",
        why="Spikes come from bad batches, LR too high after warmup, fp16 overflow or an "
        "optimizer state blown up by one huge gradient; repeated spikes often precede "
        "divergence.",
        fix="Lower the LR or lengthen warmup, clip gradients (max_grad_norm 1.0), inspect the "
        "batch at that step; with fp16, prefer bf16.",
        example="loss 6.8 at step 949 vs median 2.1 (z=24 over 50 steps)",
    )
)


class LossSpike:
    DOC = DOC
    WATCHES = (LOSS,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.window = RollingWindow(WINDOW)
        self.start: list[float] = []  # the first START_POINTS losses
        self.min_jump = 0.0
        self.episodes = Episodes(WINDOW)

    def update(self, record: Record) -> list[Finding]:
        loss = finite(record, LOSS)
        if loss is None:
            return []
        if len(self.start) < START_POINTS:
            self.start.append(loss)
            self.min_jump = MIN_JUMP_OF_START * abs(median_of(self.start))
        step = step_of(record)
        finding = self._judge(loss, step) if len(self.window) >= MIN_POINTS else None
        self.window.add(loss)
        if finding is None:
            return self.episodes.quiet() if self.episodes.open is not None else []
        if self.episodes.hit(step, loss) is not None:
            return []
        return [self.episodes.start(finding, step, loss)]

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: a run of plain losses, outside an episode and after the
        start, is decided a block at a time (`_plain_run`); anything else goes through
        `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if LOSS not in shape:
                continue  # `update` skips a record without a loss
            quiet = len(self.start) >= START_POINTS and self.episodes.open is None
            if quiet and len(self.window) >= MIN_POINTS and values.plain(LOSS):
                found.extend(self._plain_run(records, start, end, values[LOSS]))
            else:
                found.extend(self._each(records, start, end))
        return found

    def _plain_run(
        self, records: list[Record], start: int, end: int, losses: tuple[float, ...]
    ) -> list[tuple[int, Finding]]:
        """Plain losses, outside an episode, after the start. With a full window, a block of
        them is quiet at once when even its highest is under the spike bar of the lowest
        median any of its windows can have; they join the window when the next block needs
        it. Any other block is judged value by value (`_inline`)."""
        window, size = self.window, self.window.size
        if len(window) < size:
            return self._inline(records, start, end, losses, 0, len(losses)) or []
        values = list(window.order)
        values.extend(losses)
        pending = 0  # losses[pending:k] were decided quiet and have not joined the window yet
        k = 0
        while k < len(losses):
            stop = min(k + BLOCK, len(losses))
            # The windows judged in the block hold `size` values of values[k : size+stop-1]:
            # the median of each is at least that stretch's `size // 2`-th lowest value.
            floor = sorted(values[k : size + stop - 1])[size // 2 - 1]
            if floor > EXACT_HALVES and max(losses[k:stop]) <= floor * BLOCK_BAR:
                k = stop
                continue
            window.extend(losses[pending:k])
            rest = self._inline(records, start, end, losses, k, stop)
            if rest is not None:
                return rest
            pending = k = stop
        window.extend(losses[pending:])
        return []

    def _inline(
        self,
        records: list[Record],
        start: int,
        end: int,
        losses: tuple[float, ...],
        first: int,
        stop: int,
    ) -> list[tuple[int, Finding]] | None:
        """losses[first:stop] of a plain run (records[start:end]), value by value: only the
        bar is tested. None when all were quiet; at a spike, the rest of the run goes through
        `_each`, and its findings are returned."""
        window = self.window
        order, ordered, size = window.order, window.ordered, window.size
        jump = 1 + MIN_RELATIVE_JUMP
        for k in range(first, stop):
            loss = losses[k]
            lowest = ordered[0]
            if not (lowest > 0 and loss <= lowest * jump) and self._judge(loss, None) is not None:
                return self._each(records, start + k, end)
            if len(order) == size:
                del ordered[bisect_left(ordered, order.popleft())]
            order.append(loss)
            insort(ordered, loss)
        return None

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        window, episodes = self.window, self.episodes
        order, ordered, size = window.order, window.ordered, window.size
        quiet = len(self.start) >= START_POINTS and episodes.open is None
        for i in range(start, end):
            record = records[i]
            loss = record.get(LOSS)
            if loss is None:
                continue
            if (
                not quiet
                or loss.__class__ is not float
                or loss - loss != 0.0  # NaN or inf
                or (
                    len(order) >= MIN_POINTS
                    and not (ordered[0] > 0 and loss <= ordered[0] * (1 + MIN_RELATIVE_JUMP))
                    and self._judge(loss, None) is not None  # pure: `update` judges it again
                )
            ):
                found.extend((i, finding) for finding in self.update(record))
                quiet = len(self.start) >= START_POINTS and episodes.open is None
                continue
            if len(order) == size:
                del ordered[bisect_left(ordered, order.popleft())]
            order.append(loss)
            insort(ordered, loss)
        return found

    def finish(self) -> list[Finding]:
        return self.episodes.close()

    def _judge(self, loss: float, step: int | None) -> Finding | None:
        window = self.window
        lowest = window.lowest()
        # A spike is 20% above the median, so 20% above the lowest value (for a positive
        # loss): the median is taken only for the few records past that cheaper bar.
        if lowest > 0 and loss <= lowest * (1 + MIN_RELATIVE_JUMP):
            return None
        median = window.median()
        jump = loss - median
        if jump <= MIN_RELATIVE_JUMP * abs(median) or jump <= self.min_jump:
            return None
        # The spread costs two more quantiles: only worth it for a value already 20% up.
        sigma = self.window.robust_sigma()
        if jump <= SPIKE_SIGMAS * sigma:
            return None
        log_sigma = self.window.log_robust_sigma() if median > 0 else None
        if log_sigma is not None and math.log(loss / median) <= SPIKE_SIGMAS * log_sigma:
            return None
        z = jump / sigma if sigma > 0 else float("inf")
        return emit(
            DOC,
            step,
            f"Loss spike at step {step}: {loss:.4g} vs rolling median {median:.4g} "
            f"({jump / abs(median):+.0%}, robust z={z:.3g}).",
            {
                "value": loss,
                "median": median,
                "robust_sigma": sigma,
                "z": min(z, 1e9),
                "window": len(self.window),
            },
        )
