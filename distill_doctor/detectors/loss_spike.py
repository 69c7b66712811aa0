"""`loss-spike`: one loss far above the recent ones, judged robustly: distance from the rolling
median in units of the window's IQR-based sigma, and a minimum relative jump.

Not Megatron's "10x the early max" rule: a KD loss starts high (20+) and falls by 5-10x, so
that rule would never fire on a KD run after its first steps.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.rolling import RollingWindow
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

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.window = RollingWindow(WINDOW)
        self.in_spike = False

    def update(self, record: Record) -> list[Finding]:
        loss = finite(record, LOSS)
        if loss is None:
            return []
        finding = self._judge(loss, step_of(record)) if len(self.window) >= MIN_POINTS else None
        self.window.add(loss)
        return [finding] if finding else []

    def finish(self) -> list[Finding]:
        return []

    def _judge(self, loss: float, step: int | None) -> Finding | None:
        median = self.window.median()
        jump = loss - median
        # The spread costs two more quantiles: only worth it for a value already 20% up.
        sigma = self.window.robust_sigma() if jump > MIN_RELATIVE_JUMP * abs(median) else 0.0
        spike = jump > MIN_RELATIVE_JUMP * abs(median) and jump > SPIKE_SIGMAS * sigma
        was_in_spike, self.in_spike = self.in_spike, spike
        if not spike or was_in_spike:
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
