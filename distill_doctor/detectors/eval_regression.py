"""`eval-regression`: the eval loss jumps far above the best it had reached. The training loss
of a diverging run is noisy and logged per batch; the eval loss is the clean signal of the same
event, and a run can recover from it (the word-language-model run at lr 20: valid loss 39.70,
26.05, 17.68, 16.95, then 30.37 at epoch 5, before the LR was annealed).

A slow rise is overfitting (`overfitting` reports it), not this: only a jump well above the
best counts, and only a sudden one: the largest single rise between two evaluations since the
best must make up at least half of the way up, so a climb in small steps is not reported twice.
"""

from __future__ import annotations

import math

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import EVAL_LOSS, Record
from distill_doctor.registry import RuleDoc, register

# 1.5x the best eval loss so far: overfitting moves the eval loss by percents, a divergence
# (or a corrupted checkpoint, a wrong eval split) by tens of percents or more.
JUMP_FACTOR = 1.5
# The best must come from a few evaluations, or the second eval of a fresh run "jumps".
MIN_EVALS_BEFORE = 2
# Sudden: one evaluation-to-evaluation rise is at least half of the whole rise above the best.
SUDDEN_SHARE = 0.5

DOC = register(
    RuleDoc(
        id="eval-regression",
        code="DD214",
        kind="stream",
        severity=Severity.WARNING,
        summary="The eval loss jumps far (1.5x) above the best it had reached.",
        why="A model that was getting better on held-out data and then loses half its progress "
        "or more has diverged (LR too high, an fp16 overflow, a loss spike that wrecked the "
        "weights) or is being evaluated on something else (a changed eval split, a checkpoint "
        "reloaded wrong). Training-loss noise can hide it; the eval loss does not.",
        fix="Lower the LR (or anneal it on plateau), enable or tighten gradient clipping, "
        "check the loss scale in fp16; keep the best checkpoint, not the last.",
        example="eval_loss 30.37 at epoch 5 after a best of 16.95 (1.8x)",
    )
)


class EvalRegression:
    DOC = DOC
    WATCHES = (EVAL_LOSS,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.best: float = math.inf
        self.best_step: int | None = None
        self.evals = 0
        self.previous: float | None = None
        self.largest_rise = 0.0  # the largest rise between two evaluations since the best
        self.in_episode = False  # reported once until the eval loss comes back under the bar

    def update(self, record: Record) -> list[Finding]:
        value = finite(record, EVAL_LOSS)
        if value is None:
            return []
        self.evals += 1
        step = step_of(record)
        if self.previous is not None:
            self.largest_rise = max(self.largest_rise, value - self.previous)
        self.previous = value
        if value < self.best:
            self.best, self.best_step, self.largest_rise = value, step, 0.0
        jumped = self.evals > MIN_EVALS_BEFORE and value > JUMP_FACTOR * self.best > 0
        sudden = self.largest_rise >= SUDDEN_SHARE * (value - self.best)
        if not (jumped and sudden):
            self.in_episode = False
            return []
        if self.in_episode:
            return []
        self.in_episode = True
        return [
            emit(
                DOC,
                step,
                f"eval_loss {value:.4g} at step {step} is {value / self.best:.2f}x its best "
                f"({self.best:.4g} at step {self.best_step}).",
                {
                    "eval_loss": value,
                    "best_eval_loss": self.best,
                    "best_step": self.best_step,
                    "ratio": round(value / self.best, 3),
                    "largest_rise": self.largest_rise,
                    "evaluations": self.evals,
                },
            )
        ]

    def finish(self) -> list[Finding]:
        return []
