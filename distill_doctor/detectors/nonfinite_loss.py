"""`nonfinite-loss`: NaN or Inf in the loss, a loss component, an eval metric or any other
logged series (a `kl`, a reward, the LR, a parameter checksum), named by its key; including
the silent forms logs hide: a loss clamped to exactly 0.0 beside a NaN gradient norm, and
warning lines such as the seed's "lm_loss produced non-finite value (nan); clamping to zero".

One finding per outbreak, restated with its last step and count when it ends. A non-finite
gradient norm alone is `grad-nonfinite`'s; an infinite perplexity is `perplexity-overflow`'s.
"""

from __future__ import annotations

import math
import re

from distill_doctor import records as R
from distill_doctor.detectors.base import RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, with_columns
from distill_doctor.detectors.episodes import Episodes
from distill_doctor.detectors.values import emit, number, plain, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import (
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
# Series whose non-finite values are other detectors' business or no sign of bad training:
# a skipped fp16 step's gradient norm, a rate divided by a zero duration, counters.
NOT_JUDGED = frozenset(
    {
        GRAD_NORM,
        R.STEP,
        R.MICRO_STEP,
        R.EPOCH,
        R.STEPS_PER_S,
        R.TOKENS_PER_S,
        R.MEM_USED,
        R.MEM_TOTAL,
        R.PLANNED_STEPS,
        R.SCHEDULER_STEPS,
        R.VOCAB_SIZE,
        R.VALID_TOKENS,
        R.DEVICE,
    }
)

DOC = register(
    RuleDoc(
        id="nonfinite-loss",
        code="DD202",
        kind="stream",
        severity=Severity.ERROR,
        summary="A loss, loss component, eval metric or other logged series is NaN or Inf "
        "(or was silently clamped).",
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
        if key in NOT_JUDGED or key == WARNING or _is_perplexity(key):
            continue
        value = number(raw)
        if value is not None and not math.isfinite(value):
            return key, value
    return None


def _finite_sum(records: list[Record] | tuple[Record, ...]) -> bool:
    """Every value of the records is a finite number, decided in C: a finite float sum has
    no NaN or inf in it (one makes the sum NaN or inf). False for junk, a sum of ints only or
    an overflow: those are left to the full test."""
    try:
        total = sum(map(sum, map(dict.values, records)))
    except (TypeError, OverflowError):
        return False
    return total.__class__ is float and total - total == 0.0


def _clamped_loss(record: Record) -> tuple[str, float] | None:
    raw = record.get(LOSS)
    if raw is None or (type(raw) is float and raw != 0.0):
        return None  # the usual case, decided without conversions
    loss, grad_norm = number(raw), number(record.get(GRAD_NORM))
    if loss == 0.0 and grad_norm is not None and not math.isfinite(grad_norm):
        return GRAD_NORM, grad_norm
    return None


def _what(key: str) -> str:
    is_loss = key == LOSS or key.startswith(LOSS_PREFIX) or "loss" in key
    return "loss" if is_loss else key


class NonfiniteLoss:
    DOC = DOC

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.episodes = Episodes(CLEAN_RECORDS_TO_CLEAR)

    def update(self, record: Record) -> list[Finding]:
        warning = record.get(WARNING)
        if isinstance(warning, str) and NONFINITE_WARNING.search(warning):
            text = warning.strip()[:200]
            step = step_of(record)
            return self._hit(
                step, f"Non-finite loss at {_where(step)}: the log warns: {text}", {"warning": text}
            )
        bad = _nonfinite_field(record)
        if bad is not None:
            key, value = bad
            step = step_of(record)
            evidence = {"field": key, "value": plain(value)}
            micro = record.get(MICRO_STEP)
            if isinstance(micro, int):  # the live trainer names the micro-batch it began in
                evidence["micro_step"] = micro
            within = f" (micro-batch {micro} of the step)" if "micro_step" in evidence else ""
            return self._hit(
                step,
                f"Non-finite {_what(key)} at {_where(step)}: {key} is {value}{within}.",
                evidence,
            )
        clamped = _clamped_loss(record)
        if clamped is not None:
            step = step_of(record)
            return self._hit(
                step,
                f"Non-finite loss at {_where(step)}: loss is exactly 0.0 while grad_norm is "
                f"{clamped[1]} (a clamped NaN).",
                {"field": LOSS, "value": 0.0, "grad_norm": plain(clamped[1])},
            )
        if self.episodes.open is not None:
            return self.episodes.quiet()
        return []

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """`update` over a batch: outside an episode, a record without a warning whose values
        are all finite and whose loss is not a clamped 0 changes nothing; anything else goes
        through `update`."""
        found: list[tuple[int, Finding]] = []
        for (start, end, shape), values in with_columns(records, runs, columns):
            if WARNING not in shape and self.episodes.open is None:
                numbers = all(values.plain(key) or values.ints(key) for key in shape)
                if (numbers or _finite_sum(records[start:end])) and (
                    LOSS not in shape or values.nonzero_floats(LOSS)
                ):
                    continue  # a whole run of finite numbers, no clamped loss
            found.extend(self._each(records, start, end))
        return found

    def _each(self, records: list[Record], start: int, end: int) -> list[tuple[int, Finding]]:
        found: list[tuple[int, Finding]] = []
        for i in range(start, end):
            record = records[i]
            if WARNING not in record and self.episodes.open is None:
                clean = _finite_sum((record,)) or _nonfinite_field(record) is None
                loss = record.get(LOSS)
                if clean and (loss is None or (loss.__class__ is float and loss != 0.0)):
                    continue
            found.extend((i, finding) for finding in self.update(record))
        return found

    def finish(self) -> list[Finding]:
        return self.episodes.close()

    def _hit(self, step: int | None, message: str, evidence: dict) -> list[Finding]:
        if self.episodes.hit(step, math.nan) is not None:
            return []
        message += "" if message.endswith(".") else "."
        finding = emit(DOC, step, message, {"step": step, **evidence})
        return [self.episodes.start(finding, step, math.nan)]


def _where(step: int | None) -> str:
    return f"step {step}" if step is not None else "an unnumbered record"
