"""Hugging Face Trainer stdout: the dicts `Trainer.log` prints, between tqdm redraws.
    transformers 4:  {'loss': 2.31, 'grad_norm': nan, 'learning_rate': 0.0, 'epoch': 0.5}
    transformers 5:  {'loss': '4.436', 'grad_norm': '0.2711', 'learning_rate': '1e-05', ...}
    eval:            {'eval_loss': 1.38, 'eval_runtime': 2.4, ..., 'epoch': 1.0}
    summary:         {'train_runtime': 61.2, ..., 'train_loss': 2.1, 'epoch': 3.0}
Dicts are read with `ast.literal_eval` after bare nan/inf become strings, never `eval()`.
The dicts carry no step: the Trainer's tqdm bar counts optimizer steps, so the last bar count
seen is the step; without a bar, the n-th training log is step n * logging_steps.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.keys import STEP_NAMES, map_metrics, normalise, to_number
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "hf-stdout"
DESCRIPTION = "Hugging Face Trainer stdout ({'loss': ..., 'learning_rate': ...} lines)"

_DICT = re.compile(r"\{\s*'[^']+'\s*:.*\}")
_BARE = re.compile(r"(?<=[:\s\[,(])(-?)(nan|inf|infinity)(?=\s*[,}\])])", re.IGNORECASE)
_BAR = re.compile(r"(\d+)/(\d+) \[")
_SNIFF = re.compile(rb"\{'(?:loss|eval_loss|learning_rate|train_runtime|grad_norm)'\s*:")


def sniff(head: bytes, path: Path) -> bool:
    return _SNIFF.search(head) is not None


def parse_dict_line(text: str) -> dict[str, object] | None:
    """The Python dict in a line, with nan/inf kept, or None when it does not parse."""
    safe = _BARE.sub(lambda m: f"'{m.group(1)}{m.group(2)}'", text)
    try:
        value = ast.literal_eval(safe)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    return value if isinstance(value, dict) else None


class _Steps:
    """The step of each dict: the training bar's last count, else a count of training logs.

    The training bar is the first one the Trainer draws; evaluation bars (over eval batches,
    another total) come and go between its redraws and must not move the step."""

    def __init__(self, logging_steps: int) -> None:
        self.logging_steps = logging_steps
        self.train_total: str | None = None
        self.bar_step = 0
        self.train_logs = 0

    def see_bar(self, text: str) -> None:
        counts = _BAR.findall(text)
        if not counts:
            return
        count, total = counts[-1]
        if self.train_total is None:
            self.train_total = total
        if total == self.train_total:
            self.bar_step = int(count)

    def of(self, raw: dict[str, object], is_train: bool) -> int:
        for name, value in raw.items():
            if normalise(str(name)) in STEP_NAMES:
                number = to_number(value)
                if isinstance(number, int):
                    return number
        if is_train:
            self.train_logs += 1
        return self.bar_step or self.train_logs * self.logging_steps


def _record(raw: dict[str, object], steps: _Steps) -> dict[str, object] | None:
    if "train_runtime" in raw:  # the end-of-training summary repeats an average; not a step
        return None
    record: dict[str, object] = {}
    if not map_metrics(raw, record):
        return None
    record[R.STEP] = steps.of(raw, R.LOSS in record or R.LR in record)
    return record


def parse(path: Path, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    steps = _Steps(options.logging_steps or 1)
    for raw_line in iter_lines(path, skipped):
        text = raw_line.decode("utf-8", errors="replace")
        for part in text.split("\r"):
            if "{'" not in part:
                if "it/s" in part or "s/it" in part:
                    steps.see_bar(part)
                continue
            found = _DICT.search(part)
            raw = parse_dict_line(found.group(0)) if found else None
            if raw is None:
                skipped.skip("dict line that does not parse", len(part))
                continue
            record = _record(raw, steps)
            if record is not None:
                yield record
