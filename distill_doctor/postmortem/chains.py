"""Symptom -> diagnosis -> fix chains: findings that, together (and with the config), point
past the symptom to the cause, as the seed's write-up had to work out by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from distill_doctor import records as R
from distill_doctor.findings import Finding


class Chain(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    symptom: str
    diagnosis: str
    fix: str
    finding_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "symptom": self.symptom,
            "diagnosis": self.diagnosis,
            "fix": self.fix,
            "findings": list(self.finding_ids),
        }


class ChainInputs(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    first: dict[str, Finding]  # the earliest finding of each id
    planned_steps: int | None  # optimizer steps of the run (config, else the log)
    scheduler_steps: int | None  # steps the scheduler was told (log line, else config)
    accumulation: int | None


def _scheduler(inputs: ChainInputs) -> Chain | None:
    lr_zero = inputs.first.get("lr-zero")
    told, planned = inputs.scheduler_steps, inputs.planned_steps
    if lr_zero is None or not told or not planned or told == planned:
        return None
    ratio = max(told, planned) / min(told, planned)
    why = f"{ratio:.1f}x off"
    if inputs.accumulation and inputs.accumulation > 1 and abs(ratio - inputs.accumulation) < 1:
        why += f": one counts micro-batches, gradient_accumulation_steps = {inputs.accumulation}"
    return Chain(
        symptom=f"LR at 0 from step {lr_zero.step}",
        diagnosis=f"root cause: the scheduler, not the loss. It was told {told:,} total steps "
        f"but the run takes {planned:,} optimizer steps ({why}), so its schedule ends early.",
        fix=f"Tell the scheduler {planned:,} steps (optimizer steps = batches / "
        "gradient_accumulation_steps x epochs) and step it once per optimizer step.",
        finding_ids=("lr-zero",),
    )


def _frozen_weights(inputs: ChainInputs) -> Chain | None:
    frozen = inputs.first.get("eval-frozen")
    cause = inputs.first.get("lr-zero") or inputs.first.get("params-frozen")
    if frozen is None or cause is None:
        return None
    return Chain(
        symptom=f"eval metrics identical from step {frozen.step}",
        diagnosis=f"no weight updates: {cause.id} from step {cause.step}, so every evaluation "
        "scores the same weights. The eval code is not the bug.",
        fix=cause.fix or "Make the optimizer step change the weights (LR > 0, params trainable).",
        finding_ids=("eval-frozen", cause.id),
    )


def _perplexity_cause(evidence: dict[str, object]) -> tuple[str, str]:
    """(diagnosis, fix) from which loss ln(ppl) matched, as the detector's evidence says."""
    # A running-mean training loss printed beside the ppl matches it only roughly: "nearest".
    matched = evidence.get("matches") or evidence.get("nearest")
    ce = evidence.get("ce")
    if evidence.get("ce_like") is False:
        return (
            f"the perplexity is exp() of {matched or 'a loss'} that is no per-token "
            "cross-entropy (a loss summed over tokens, a KD or regression loss): the number "
            "means nothing, whatever the run's health. Judge the run by its loss, not by it.",
            "Compute perplexity only as exp(mean cross-entropy per token), or stop logging it.",
        )
    if matched in (R.LOSS, R.EVAL_LOSS) and ce is not None:
        return (
            f"the perplexity is computed from the wrong loss: exp() of the combined {matched} "
            f"(CE + KD + feature terms), not of the cross-entropy ({ce:.4g}).",
            "Report perplexity as exp(eval cross-entropy per token) only.",
        )
    if matched == R.LOSS and evidence.get("latest_eval_loss") is not None:
        return (
            "the perplexity is computed from the wrong loss: exp() of the training loss, not "
            f"of the eval loss ({evidence['latest_eval_loss']:.4g}) it is printed beside"
            f"{_nearby(evidence)}.",
            "Report perplexity as exp(eval cross-entropy per token) only.",
        )
    return (
        f"the perplexity is exp() of {matched or 'a loss'} as it should be, but that loss is "
        "itself huge: the model is worse than a uniform guess. The loss is the problem, not "
        "the perplexity formula.",
        "Look at the loss's own findings (LR too high, divergence, labels); cap the displayed "
        "perplexity (exp(min(ce, 20))) so the log stays readable.",
    )


def _nearby(evidence: dict[str, object]) -> str:
    """When ln(ppl) only nears the logged loss (a running mean), say how near, as the finding
    does."""
    ln_ppl, value = evidence.get("ln_ppl"), evidence.get("nearest_value")
    if evidence.get("matches") or not isinstance(ln_ppl, float | int):
        return ""
    if not isinstance(value, float | int):
        return ""
    return f" (ln(ppl) = {ln_ppl:.4g}; the training loss logged nearby is {value:.4g})"


def _perplexity(inputs: ChainInputs) -> Chain | None:
    overflow = inputs.first.get("perplexity-overflow")
    if overflow is None:
        return None
    ppl = overflow.evidence.get(R.PPL)
    shown = f"{ppl:,.0f}" if isinstance(ppl, (int, float)) else "overflowing"
    diagnosis, fix = _perplexity_cause(overflow.evidence)
    return Chain(
        symptom=f"perplexity {shown} at step {overflow.step}",
        diagnosis=diagnosis,
        fix=fix,
        finding_ids=("perplexity-overflow",),
    )


def _hidden_nan(inputs: ChainInputs) -> Chain | None:
    nonfinite = inputs.first.get("nonfinite-loss")
    if nonfinite is None or "clamp" not in nonfinite.message.lower():
        return None
    return Chain(
        symptom=f"a loss component became NaN at step {nonfinite.step} and was clamped to 0",
        diagnosis="the loss shown is finite only because the NaN was hidden: that component "
        "stopped training, and its gradients may be NaN too.",
        fix=nonfinite.fix or "Find the overflow (temperature, fp16 logits) instead of clamping.",
        finding_ids=("nonfinite-loss",),
    )


CHAINS: tuple[Callable[[ChainInputs], Chain | None], ...] = (
    _scheduler,
    _frozen_weights,
    _perplexity,
    _hidden_nan,
)


def find_chains(inputs: ChainInputs) -> list[Chain]:
    return [chain for rule in CHAINS if (chain := rule(inputs)) is not None]
