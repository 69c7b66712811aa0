"""`nonfinite-loss`: NaN or Inf in the loss, a loss component or an eval metric, including
the silent forms logs hide: a loss clamped to exactly 0.0 beside a NaN gradient norm, and
warning lines such as the seed's "lm_loss produced non-finite value (nan); clamping to zero".
"""

from __future__ import annotations

import math
import re

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, number, plain, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import (
    EVAL_PREFIX,
    GRAD_NORM,
    LOSS,
    LOSS_PREFIX,
    MICRO_STEP,
    WARNING,
    Record,
)
from distill_doctor.registry import RuleDoc, register

# Clean records needed before a new NaN counts as a new episode: one finding per outbreak,
# not one per step of a run that is NaN throughout.
CLEAN_RECORDS_TO_CLEAR = 100
# A warning line about a non-finite value; "nan"/"inf" as whole words, not "infinite loop".
NONFINITE_WARNING = re.compile(r"non-?finite|\bnan\b|\binf\b", re.IGNORECASE)

DOC = register(
    RuleDoc(
        id="nonfinite-loss",
        code="DD202",
        kind="stream",
        severity=Severity.ERROR,
        summary="A loss, loss component or eval metric is NaN or Inf (or was silently clamped).",
        why="One NaN poisons the weights through the optimizer state; clamping it to 0 hides the "
        "overflow while the run keeps training on garbage.",
        fix="Find the first non-finite term: lower the KD temperature or compute the softmax in "
        "fp32, check for log(0) or division by a zero token count, lower the LR, enable grad "
        "clipping; in fp16 prefer bf16 or a GradScaler.",
        example="[Warning] lm_loss produced non-finite value (nan); clamping to zero.",
    )
)


def _is_perplexity(key: str) -> bool:
    # An infinite perplexity is an overflow of exp(), reported by perplexity-overflow.
    return "ppl" in key or "perplexity" in key


def _nonfinite_field(record: Record) -> tuple[str, float] | None:
    for key, raw in record.items():
        if type(raw) is float and math.isfinite(raw):
            continue  # the usual case, decided before any string work
        if key != LOSS and not key.startswith((LOSS_PREFIX, EVAL_PREFIX)):
            continue
        value = number(raw)
        if value is not None and not math.isfinite(value) and not _is_perplexity(key):
            return key, value
    return None


def _clamped_loss(record: Record) -> tuple[str, float] | None:
    loss, grad_norm = number(record.get(LOSS)), number(record.get(GRAD_NORM))
    if loss == 0.0 and grad_norm is not None and not math.isfinite(grad_norm):
        return GRAD_NORM, grad_norm
    return None


class NonfiniteLoss:
    DOC = DOC

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.in_episode = False
        self.clean_records = 0

    def update(self, record: Record) -> list[Finding]:
        warning = record.get(WARNING)
        if isinstance(warning, str) and NONFINITE_WARNING.search(warning):
            text = warning.strip()[:200]
            return self._episode(step_of(record), f"the log warns: {text}", {"warning": text})
        bad = _nonfinite_field(record)
        if bad is not None:
            key, value = bad
            evidence = {"field": key, "value": plain(value)}
            micro = record.get(MICRO_STEP)
            if isinstance(micro, int):  # the live trainer names the micro-batch it began in
                evidence["micro_step"] = micro
            within = f" (micro-batch {micro} of the step)" if "micro_step" in evidence else ""
            return self._episode(step_of(record), f"{key} is {value}{within}", evidence)
        clamped = _clamped_loss(record)
        if clamped is not None:
            return self._episode(
                step_of(record),
                f"loss is exactly 0.0 while grad_norm is {clamped[1]} (a clamped NaN)",
                {"field": LOSS, "value": 0.0, "grad_norm": plain(clamped[1])},
            )
        if any(k == LOSS or k.startswith((LOSS_PREFIX, EVAL_PREFIX)) for k in record):
            self.clean_records += 1
            if self.clean_records >= CLEAN_RECORDS_TO_CLEAR:
                self.in_episode = False
        return []

    def finish(self) -> list[Finding]:
        return []

    def _episode(self, step: int | None, what: str, evidence: dict) -> list[Finding]:
        self.clean_records = 0
        if self.in_episode:
            return []
        self.in_episode = True
        where = f"step {step}" if step is not None else "an unnumbered record"
        message = f"Non-finite loss at {where}: {what}"
        message += "" if message.endswith(".") else "."
        return [emit(DOC, step, message, {"step": step, **evidence})]
