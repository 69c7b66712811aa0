"""`eval-frozen`: the eval losses repeat, identical to the printed precision, evaluation after
evaluation: the evaluated model does not change, or the eval reads a stale cache.

The seed printed `loss=101.40, kd=21.14` at steps 1000, 2000 and 3000; a QuALITY run logged
eval_loss 1.3862943649291992 (ln 4: a uniform guess over 4 choices) at 41 of 62 evaluations.
"""

from __future__ import annotations

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import EVAL_PREFIX, Record
from distill_doctor.registry import RuleDoc, register

# Two equal evals can be chance; three in a row of a loss to 6 digits are not.
MIN_REPEATS = 3
# Logs print 2-6 significant digits; a float32 eval jitters in the 7th (1.38629436 vs
# 1.38629425 in the QuALITY run), so compare at 6.
SIGNIFICANT_DIGITS = 6
# Accuracy and runtime metrics may legitimately repeat; only losses are expected to move.
LOSS_NAMES = ("loss", "ce", "kd", "lm", "nll", "feature", "attention")

DOC = register(
    RuleDoc(
        id="eval-frozen",
        code="DD204",
        kind="stream",
        severity=Severity.ERROR,
        summary="Eval losses are identical (to the printed precision) across evaluations.",
        why="A model that trains changes its eval loss at every evaluation. Identical values "
        "mean the weights are not updating (LR at 0, frozen parameters, optimizer over the "
        "wrong parameters) or the eval scores a cached or wrong model.",
        fix="Check the LR is above 0 and the optimizer holds the student's trainable "
        "parameters; check the eval uses the current model (model.eval() on the student, no "
        "cached outputs).",
        example="Step 1000/2000/3000: eval loss=101.40, kd=21.14, feature=40.79",
    )
)


def _is_loss_metric(key: str) -> bool:
    name = key[len(EVAL_PREFIX) :]
    return any(part in LOSS_NAMES for part in name.split("_"))


class EvalFrozen:
    DOC = DOC
    WATCHES = (EVAL_PREFIX + "*",)

    def __init__(self, facts: RunFacts | None = None) -> None:
        # metric -> (rounded value, repeats, step of the first of them); one entry per metric.
        self.runs: dict[str, tuple[float, int, int | None]] = {}

    def update(self, record: Record) -> list[Finding]:
        findings = []
        for key in record:
            if key.startswith(EVAL_PREFIX) and _is_loss_metric(key):
                finding = self._observe(key, finite(record, key), step_of(record))
                if finding is not None:
                    findings.append(finding)
        # One finding per frozen evaluation, however many of its metrics froze.
        return findings[:1]

    def finish(self) -> list[Finding]:
        return []

    def _observe(self, key: str, value: float | None, step: int | None) -> Finding | None:
        if value is None:
            return None
        rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
        previous = self.runs.get(key)
        if previous is None or previous[0] != rounded:
            self.runs[key] = (rounded, 1, step)
            return None
        repeats, first_step = previous[1] + 1, previous[2]
        self.runs[key] = (rounded, repeats, first_step)
        if repeats != MIN_REPEATS:
            return None
        return emit(
            DOC,
            first_step,
            f"{key} is {value:.6g} at {MIN_REPEATS} evaluations in a row (steps "
            f"{first_step}..{step}): the evaluated model is not changing.",
            {
                "metric": key,
                "value": value,
                "evaluations": repeats,
                "first_step": first_step,
                "last_step": step,
            },
        )
