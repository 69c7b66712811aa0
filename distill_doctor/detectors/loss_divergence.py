"""`loss-divergence`: the loss trends up and ends above where it started: training is making
the model worse (LR too high, a broken loss term, fp16 overflow building up).
"""

from __future__ import annotations

from statistics import median

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.rolling import RollingWindow
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import LOSS, Record
from distill_doctor.registry import RuleDoc, register

BASELINE_POINTS = 10  # the starting level: median of the first records
WINDOW = 20  # records of the recent level; a median, so single spikes do not count
# The recent level must exceed the start by 10%: KD losses wobble by a few percent early on.
ABOVE_START = 0.10
# And still be rising: the second half of the window above the first by 2%.
MIN_RISE = 0.02
# The level moves slowly: judging every 5th record finds the same episodes at a fifth of the cost.
JUDGE_EVERY = 5

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

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.baseline_points: list[float] = []
        self.window = RollingWindow(WINDOW)
        self.lowest: tuple[float, int | None] | None = None  # (level, step): the trough
        self.diverging = False
        self.seen = 0

    def update(self, record: Record) -> list[Finding]:
        loss, step = finite(record, LOSS), step_of(record)
        if loss is None:
            return []
        if len(self.baseline_points) < BASELINE_POINTS:
            self.baseline_points.append(loss)
        self.window.add(loss)
        self.seen += 1
        if len(self.window) < WINDOW or self.seen % JUDGE_EVERY:
            return []
        level = self.window.median()
        if self.lowest is None or level < self.lowest[0]:
            self.lowest = (level, step)
        baseline = median(self.baseline_points)
        if level <= baseline:
            self.diverging = False  # back below the start: a new rise is a new episode
        if level <= baseline * (1 + ABOVE_START):
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

    def finish(self) -> list[Finding]:
        return []

    def _rising(self) -> bool:
        recent = self.window.values()
        half = len(recent) // 2
        first, second = median(recent[:half]), median(recent[half:])
        return second > first * (1 + MIN_RISE)
