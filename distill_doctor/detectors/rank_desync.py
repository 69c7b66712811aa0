"""`rank-desync`: the student's weights differ across the ranks of a torch.distributed run.
DDP averages gradients and assumes every rank starts and stays identical; it never compares
weights. A rank that loaded other weights, skipped a step, or ran a different optimizer
trains its own model from then on, and the checkpoint holds rank 0's alone.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import (
    CHECKSUM,
    RANK_CHECKSUM_OUTLIER,
    RANK_CHECKSUM_SPREAD,
    WORLD_SIZE,
    Record,
)
from distill_doctor.registry import RuleDoc, register

# In sync, every rank sums the same float32 weights in the same order: the spread is exactly
# 0. The tolerance only absorbs a different reduction order on mixed hardware.
RELATIVE_TOLERANCE = 1e-6

DOC = register(
    RuleDoc(
        id="rank-desync",
        code="DD250",
        kind="stream",
        severity=Severity.ERROR,
        summary="The student's weights differ across the ranks of a distributed run.",
        why="DDP keeps ranks identical only by applying the same averaged gradient to the "
        "same weights; it never compares the weights. Once they differ, each rank trains its "
        "own model, the averaged gradient fits none of them, and the checkpoint keeps rank 0's.",
        fix="Make every rank start from the same weights (load before wrapping in DDP, which "
        "broadcasts rank 0's) and run the same steps: no rank-dependent code paths that skip "
        "optimizer.step(), no per-rank weight edits; resume from the last checkpoint before the "
        "spread appeared.",
        example="checksums spread 0.01 over 8 ranks at step 2; rank 3 is furthest from the median",
    )
)


class RankDesync:
    DOC = DOC
    WATCHES = (RANK_CHECKSUM_SPREAD,)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.in_episode = False

    def update(self, record: Record) -> list[Finding]:
        spread = finite(record, RANK_CHECKSUM_SPREAD)
        if spread is None:
            return []
        scale = max(1.0, abs(finite(record, CHECKSUM) or 0.0))
        if spread <= RELATIVE_TOLERANCE * scale:
            self.in_episode = False
            return []
        if self.in_episode:
            return []
        self.in_episode = True
        step = step_of(record)
        outlier, world = finite(record, RANK_CHECKSUM_OUTLIER), finite(record, WORLD_SIZE)
        ranks = f" over {int(world)} ranks" if world is not None else ""
        odd = f"; rank {int(outlier)} is furthest from the median" if outlier is not None else ""
        return [
            emit(
                DOC,
                step,
                f"Student weights differ across ranks at step {step}: the checksums spread "
                f"{spread:.3g}{ranks}{odd}. DDP never re-syncs weights, so the ranks now train "
                "different models.",
                {
                    "step": step,
                    "spread": spread,
                    "outlier_rank": None if outlier is None else int(outlier),
                    "world_size": None if world is None else int(world),
                },
            )
        ]

    def finish(self) -> list[Finding]:
        return []
