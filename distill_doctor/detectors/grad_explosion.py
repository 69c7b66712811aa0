"""`grad-explosion`: the gradient norm jumps far above its running median.

Non-finite gradient norms are not reported here: under fp16 the GradScaler skips such steps
by design; a NaN that reaches the loss is reported by nonfinite-loss.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.rolling import RollingWindow
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import GRAD_NORM, Record
from distill_doctor.registry import RuleDoc, register

WINDOW = 50  # records of the running level
MIN_POINTS = 10
# 10x the median: healthy grad norms wander 2-4x (warmup, epoch boundaries), not 10x.
EXPLOSION_FACTOR = 10.0

DOC = register(
    RuleDoc(
        id="grad-explosion",
        code="DD208",
        kind="stream",
        severity=Severity.WARNING,
        summary="The gradient norm is far (10x) above its running median.",
        why="An exploding gradient throws the weights far in one step and corrupts Adam's "
        "moment estimates; the loss often spikes or diverges a few steps later.",
        fix="Clip gradients (max_grad_norm 1.0), lower the LR or lengthen warmup, look for a "
        "loss term without a temperature or a division by a tiny count.",
        example="grad_norm 412 at step 730 vs running median 2.1 (196x)",
    )
)


class GradExplosion:
    DOC = DOC

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.window = RollingWindow(WINDOW)
        self.exploding = False

    def update(self, record: Record) -> list[Finding]:
        grad = finite(record, GRAD_NORM)
        if grad is None:
            return []
        finding = None
        if len(self.window) >= MIN_POINTS:
            finding = self._judge(grad, step_of(record))
        self.window.add(grad)
        return [finding] if finding else []

    def finish(self) -> list[Finding]:
        return []

    def _judge(self, grad: float, step: int | None) -> Finding | None:
        median = self.window.median()
        exploding = median > 0 and grad > EXPLOSION_FACTOR * median
        was_exploding, self.exploding = self.exploding, exploding
        if not exploding or was_exploding:
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
