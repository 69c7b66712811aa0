"""Metric names as logs spell them -> `Record` keys, shared by every parser.

Logs say `learning_rate`, `lr`, `train/loss`, `loss/kd`, `val_loss`, `kd_loss`...; detectors
know one name per quantity (see `distill_doctor.records`)."""

from __future__ import annotations

import functools
import re
from typing import Protocol

from distill_doctor import records as R

# Whole names (after lower-casing, with `/`, `-` and spaces as `_`).
_EXACT = {
    "lr": R.LR,
    "learning_rate": R.LR,
    "loss": R.LOSS,
    "train_loss": R.LOSS,
    "total_loss": R.LOSS,
    "grad_norm": R.GRAD_NORM,
    "gradient_norm": R.GRAD_NORM,
    "gn": R.GRAD_NORM,
    "ppl": R.PPL,
    "perplexity": R.PPL,
    "train_ppl": R.PPL,
    "train_perplexity": R.PPL,
    "epoch": R.EPOCH,
    "checksum": R.CHECKSUM,
    "loss_scale": R.LOSS_SCALE,
    "valid_tokens": R.VALID_TOKENS,
    "steps_per_s": R.STEPS_PER_S,
    "train_steps_per_second": R.STEPS_PER_S,
    "tokens_per_s": R.TOKENS_PER_S,
    "mem_used_bytes": R.MEM_USED,
    "mem_total_bytes": R.MEM_TOTAL,
    "planned_steps": R.PLANNED_STEPS,
    "scheduler_steps": R.SCHEDULER_STEPS,
    "vocab_size": R.VOCAB_SIZE,
}
# Loss components by their usual short names.
_COMPONENTS = {
    "ce": "ce",
    "lm": "ce",
    "lm_loss": "ce",
    "ce_loss": "ce",
    "nll": "ce",
    "kd": "kd",
    "kd_loss": "kd",
    "distill": "kd",
    "distillation_loss": "kd",
    "feature": "feature",
    "feature_loss": "feature",
    "hidden": "feature",
    "attention": "attention",
    "attention_loss": "attention",
    "attn": "attention",
}
_EVAL_PREFIXES = ("eval_", "val_", "valid_", "validation_", "test_")
_SEPARATORS = re.compile(r"[/\-\s.]+")
# Timings and counters, not health metrics: an eval's runtime changes even when its loss is
# frozen, so keeping it would hide a frozen eval.
_NOT_METRICS = ("runtime", "per_second", "samples", "flos", "num_tokens", "time")
STEP_NAMES = frozenset({"step", "global_step", "_step", "iteration", "iter", "it", "trainer_step"})


def normalise(name: str) -> str:
    return _SEPARATORS.sub("_", name.strip().lower()).strip("_")


def _train_key(name: str) -> str | None:
    if name in _EXACT:
        return _EXACT[name]
    if name in _COMPONENTS:
        return R.LOSS_PREFIX + _COMPONENTS[name]
    for head in ("train_", "loss_"):
        if name.startswith(head):
            rest = name[len(head) :]
            if rest in _COMPONENTS:
                return R.LOSS_PREFIX + _COMPONENTS[rest]
            if head == "loss_" and rest:
                return R.LOSS_PREFIX + rest
            return _train_key(rest) if head == "train_" else None
    if name.endswith("_loss") and name != "_loss":
        return R.LOSS_PREFIX + name[: -len("_loss")]
    return None


@functools.lru_cache(maxsize=4096)  # logs repeat a few names millions of times
def record_key(raw_name: str) -> str | None:
    """The Record key for a metric name, or None when the name is not a training metric.

    >>> record_key("train/learning_rate"), record_key("eval/loss"), record_key("loss/kd")
    ('lr', 'eval_loss', 'loss_kd')
    """
    name = normalise(raw_name)
    if any(part in name for part in _NOT_METRICS):
        return None
    if name.startswith("lr_"):  # Lightning's LearningRateMonitor: "lr-Adam", "lr-AdamW/pg1"
        return R.LR
    for prefix in _EVAL_PREFIXES:
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            inner = _train_key(rest)
            if inner == R.LOSS or rest == "loss":
                return R.EVAL_LOSS
            if inner == R.PPL:
                return R.EVAL_PREFIX + "ppl"
            if inner and inner.startswith(R.LOSS_PREFIX):
                return R.EVAL_PREFIX + inner[len(R.LOSS_PREFIX) :]
            return R.EVAL_PREFIX + rest if rest else None
    if name.startswith("eval"):  # "eval/loss" normalised is "eval_loss"; "evalloss" is not
        return None
    return _train_key(name)


# Past this an int is not a count but garbage (or an attack: 5,000 digits); it becomes a float
# (inf when too big even for that), so arithmetic on it cannot raise.
MAX_EXACT_INT = 2**53
MAX_NUMBER_CHARS = 400  # float("1" * 5000) is inf anyway; int() of it is refused


def to_number(value: object) -> float | int | None:
    """A metric value as a number: ints stay ints, "nan"/"inf" strings and "4,687" work."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -MAX_EXACT_INT <= value <= MAX_EXACT_INT else _as_float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            text = text.replace(",", "")
        if len(text) > MAX_NUMBER_CHARS:
            return None
        if text.isdigit() or (text[:1] in "-+" and text[1:].isdigit()):
            return to_number(int(text))
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _as_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def to_step(value: object) -> int | None:
    """A step counter: a non-negative int small enough to be exact, else None."""
    number = to_number(value)
    if isinstance(number, int) and 0 <= number <= MAX_EXACT_INT:
        return number
    return None


def map_metrics(
    raw: dict[str, object], record: dict[str, object], options: KeyOf | None = None
) -> int:
    """Copy the recognised numeric metrics of `raw` into `record`; returns how many. `options`
    (the parse options) may rename metrics as the user asked (`--map`)."""
    key_of = options.key if options is not None else record_key
    found = 0
    for name, value in raw.items():
        key = key_of(str(name))
        if key is None:
            continue
        number = to_number(value)
        if number is not None:
            record[key] = number
            found += 1
    return found


class KeyOf(Protocol):
    def key(self, raw_name: str) -> str | None: ...
