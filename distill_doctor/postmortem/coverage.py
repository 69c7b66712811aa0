"""Which checks ran on a run's logs and which were skipped, and why: a verdict of "healthy"
means only as much as the series it was judged on.

Each stream detector needs some series with enough points ("no grad_norm series", "fewer than
5 eval points"); the analysis counts the points of every series as it streams, and
`coverage` reads the counts against `NEEDS`. A new detector adds one line here (a test checks
that every detector has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from distill_doctor import records as R
from distill_doctor.detectors import (
    grad_explosion,
    kd_signal_dead,
    loss_divergence,
    loss_flat,
    loss_spike,
    memory_growth,
    overfitting,
    perplexity_overflow,
    throughput_drop,
)
from distill_doctor.detectors.base import RunFacts

ANY_METRIC = "*"  # a check that reads whatever series the log has


class Need(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    series: tuple[str, ...]  # any one of these series, all of `also`
    points: int
    what: str  # how a person names the series: "grad_norm", "training loss"
    also: tuple[str, ...] = ()  # further series it needs (overfitting: the training loss)


_LOSS = (R.LOSS,)
_GRAD = (R.GRAD_NORM,)
_EVAL_LOSS = (R.EVAL_LOSS,)

NEEDS: dict[str, Need] = {
    "lr-zero": Need((R.LR,), 3, "lr"),
    "nonfinite-loss": Need((ANY_METRIC,), 1, "metric"),
    "params-frozen": Need((R.CHECKSUM,), 3, "checksum"),
    "eval-frozen": Need((ANY_METRIC + R.EVAL_PREFIX,), 3, "eval"),
    "loss-flat": Need(_LOSS, loss_flat.SHORT_MIN_POINTS, "training loss"),
    "loss-spike": Need(_LOSS, loss_spike.MIN_POINTS + 1, "training loss"),
    "loss-divergence": Need(_LOSS, loss_divergence.SHORT_MIN_POINTS, "training loss"),
    "grad-explosion": Need(_GRAD, grad_explosion.FEWEST_POINTS, "grad_norm"),
    "grad-vanishing": Need(_GRAD, 5, "grad_norm"),
    "loss-above-chance": Need(("loss_ce",) + _LOSS, 1, "loss"),
    "perplexity-overflow": Need(perplexity_overflow.PPL_KEYS, 1, "perplexity"),
    "memory-pressure": Need((R.MEM_USED,), 3, "memory use"),
    "throughput-drop": Need(
        (R.STEPS_PER_S, R.TOKENS_PER_S), throughput_drop.MIN_POINTS + 1, "throughput"
    ),
    "eval-regression": Need(_EVAL_LOSS, 3, "eval_loss"),
    "grad-nonfinite": Need(_GRAD, 1, "grad_norm"),
    "overfitting": Need(_EVAL_LOSS, overfitting.MIN_EVALS, "eval_loss", also=_LOSS),
    "all-labels-masked": Need((R.ALL_MASKED_BATCHES, R.VALID_TOKENS), 1, "label-token count"),
    "memory-growth": Need(
        memory_growth.SERIES, memory_growth.SKIP_RECORDS + memory_growth.WINDOW, "memory use"
    ),
    "kd-signal-dead": Need((kd_signal_dead.LOSS_KD,), 1, "loss_kd"),
    # Only a torchrun run's records carry the per-rank fields.
    "rank-desync": Need((R.RANK_CHECKSUM_SPREAD,), 1, "per-rank checksums (a torchrun run)"),
    "straggler-rank": Need((R.RANK_STEP_S_MAX,), 1, "per-rank step times (a torchrun run)"),
    "nonfinite-rank": Need((R.WORLD_SIZE,), 1, "per-rank losses (a torchrun run)"),
}


class Check(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    id: str
    ran: bool
    detail: str  # "on 1,234 grad_norm points" or why it was skipped

    def to_dict(self) -> dict[str, object]:
        key = "on" if self.ran else "skipped_because"
        return {"id": self.id, "ran": self.ran, key: self.detail}


def _count(series: Mapping[str, int], key: str) -> int:
    if key == ANY_METRIC:
        return sum(n for k, n in series.items() if k != R.STEP)
    if key.startswith(ANY_METRIC):
        prefix = key[len(ANY_METRIC) :]
        return max((n for k, n in series.items() if k.startswith(prefix)), default=0)
    return series.get(key, 0)


def _judge(check_id: str, need: Need, series: Mapping[str, int], vocab: bool) -> Check:
    counts = {key: _count(series, key) for key in need.series}
    key, points = max(counts.items(), key=lambda item: item[1])
    name = key if not key.startswith(ANY_METRIC) else need.what
    if points == 0:
        return Check(check_id, False, f"no {need.what} series")
    if points < need.points:
        return Check(check_id, False, f"fewer than {need.points} {need.what} points ({points})")
    for other in need.also:
        if not _count(series, other):
            return Check(check_id, False, f"no {other} series")
    if check_id == "loss-above-chance" and not vocab:
        return Check(check_id, False, "vocabulary size unknown (--vocab-size)")
    return Check(check_id, True, f"{points:,} {name} points")


def coverage(
    series: Mapping[str, int],
    facts: RunFacts | None = None,
    crashed: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every stream check, ran or skipped, in code order; one that raised (`crashed`: id ->
    what it raised) did not finish, whatever its series."""
    vocab = bool(facts and facts.vocab_size) or series.get(R.VOCAB_SIZE, 0) > 0
    crashed = crashed or {}
    return [
        Check(check_id, False, f"the check crashed: {crashed[check_id]}")
        if check_id in crashed
        else _judge(check_id, need, series, vocab)
        for check_id, need in NEEDS.items()
    ]


def judged_series(series: Mapping[str, int]) -> list[tuple[str, int]]:
    """The health series a verdict rests on, most points first (steps and facts left out)."""
    facts = {R.STEP, R.MICRO_STEP, R.EPOCH, R.PLANNED_STEPS, R.SCHEDULER_STEPS, R.VOCAB_SIZE}
    facts |= {R.MEM_TOTAL, R.WARNING, R.DEVICE}
    kept = [(k, n) for k, n in series.items() if k not in facts and n]
    return sorted(kept, key=lambda item: (-item[1], item[0]))
