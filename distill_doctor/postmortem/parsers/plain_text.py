"""Plain training prints of every other kind, the last format tried:
    Epoch: 3, Loss: 0.4512, Accuracy: 0.87
    Epoch 2/10 - Train Loss: 0.52, Val Loss: 0.61, Validation Accuracy: 0.80
    epoch: 3442 loss: 0.2105546216666698
    Iter: 1200 | loss: 2.31 | lr: 1e-4 | grad_norm: 0.8
    Epoch(train) [1][200/735]  lr: 1.9870e-04  time: 2.89  loss: 2.7522  grad_norm: 3.0608
    iteration     5426/  250000 | learning rate: 2.999E-04 | lm loss: 2.3E+00 | grad norm: nan
    iter 2920: loss 3.9883, time 1099.34ms, mfu 15.34%
Names are matched as words with a colon or `=`, or ending a field with their value:
`Train Loss`, `val_loss` and `Validation Accuracy` are the record keys `loss`, `eval_loss`
and `eval_accuracy` (the longest tail of the words that names a metric wins: `avg train loss`
is `loss`). The step is a step or iter
counter on the line; else `[epoch][i/n]` as epoch * n + i; else the epoch number itself;
else the last counter seen (a metric line under an `Epoch 3` heading); else the line count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import normalise, to_number, to_step
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "plain-text"
DESCRIPTION = "plain prints (Epoch: 3, Loss: 0.45 / Step 100 | loss: 2.3 | lr: 1e-4 ...)"
MAX_SCAN_BYTES = 16 * 1024  # the part of a line read for pairs; a metric line is shorter

_NUMBER = rb"[-+]?(?:nan|inf(?:inity)?|\d{1,40}(?:\.\d{0,40})?(?:[eE][-+]?\d{1,4})?|\.\d{1,40})"
_WORD = rb"[A-Za-z][\w./-]{0,40}"
# Up to four words, then `:` or `=`, then a number that is not the start of a time (`2:46:39`)
# or a fraction (`1/10`).
_PAIR = re.compile(
    rb"(?<![\w./-])("
    + _WORD
    + rb"(?: "
    + _WORD
    + rb"){0,3})[ \t]{0,4}[:=][ \t]{0,4}("
    + _NUMBER
    + rb")(?![\w:/])",
    re.IGNORECASE,
)
_COUNTER = re.compile(
    rb"\b(epoch|step|global[ _]step|iter|iteration|it)\b(?:\(\w{1,16}\))?[ \t]{0,4}[:=#]?[ \t]{0,4}"
    rb"\[?[ \t]{0,8}(\d{1,15})[ \t]{0,8}\]?(?:[ \t]{0,8}/[ \t]{0,8}(\d{1,15}))?"
    rb"(?:[ \t]{0,4}\[[ \t]{0,8}(\d{1,15})[ \t]{0,4}/[ \t]{0,4}(\d{1,15})[ \t]{0,8}\])?",
    re.IGNORECASE,
)
_LOSS_WORD = re.compile(rb"loss", re.IGNORECASE)
# Without `:` or `=`, a name and its value end a field: fields are split by `,`, `|`, `;`, a
# tab or two spaces (`iter 2920: loss 3.9883, time 1099.34ms`; `loss 6.35 (6.13)    lr 1e-4`),
# and a running average in parentheses after the value is dropped.
_FIELD_BREAK = re.compile(rb"[,|;\t]|  ")
_SPACED_PAIR = re.compile(
    rb"(?<![\w./-])(" + _WORD + rb"(?: " + _WORD + rb"){0,3}) {1,4}(" + _NUMBER + rb")"
    rb"(?: {0,4}\([^()]{0,40}\))? {0,4}$",
    re.IGNORECASE,
)


def _metric_key(raw_name: bytes, options: ParseOptions) -> str | None:
    """The longest tail of the words that names a metric (`avg train loss` is `loss`)."""
    words = raw_name.decode("ascii", "replace").split(" ")
    for first in range(len(words)):
        key = options.key(" ".join(words[first:]))
        if key is not None:
            return key if key != R.EPOCH else None
    return None


def _metrics(line: bytes, options: ParseOptions) -> dict[str, object]:
    found: dict[str, object] = {}
    text = line[:MAX_SCAN_BYTES]
    pairs = _PAIR.findall(text)
    for field in _FIELD_BREAK.split(text):
        spaced = _SPACED_PAIR.search(field)
        if spaced is not None:
            pairs.append(spaced.groups())
    for raw_name, raw_value in pairs:
        key = _metric_key(raw_name, options)
        number = to_number(raw_value.decode("ascii")) if key is not None else None
        if key is not None and number is not None:
            found.setdefault(key, number)
    return found


def sniff(head: bytes, path: object) -> bool:
    """Three lines that print a loss (prose mentions one now and then), or every line of a
    log shorter than that."""
    found = written = 0
    for line in head.split(b"\n")[:2000]:
        written += bool(line.strip())
        if _LOSS_WORD.search(line) is None:
            continue
        found += any("loss" in k for k in _metrics(line, ParseOptions()))
        if found >= 3:
            return True
    return found >= 1 and found == written


class _Steps:
    """The step of each metric line, from the counters it or an earlier line shows."""

    def __init__(self) -> None:
        self.step: int | None = None
        self.lines = 0

    def of(self, line: bytes) -> int:
        self.lines += 1
        epoch_step = None
        for match in _COUNTER.finditer(line[:MAX_SCAN_BYTES]):
            word = normalise(match.group(1).decode("ascii"))
            count = to_step(match.group(2).decode("ascii"))
            inner, per_epoch = match.group(4), match.group(5)
            if count is None:
                continue
            if word == "epoch":
                if inner is not None and per_epoch is not None:  # [1][200/735]
                    epoch_step = max(count - 1, 0) * int(per_epoch) + int(inner)
                elif epoch_step is None:
                    epoch_step = count
                continue
            self.step = count  # a step or iteration counter wins over the epoch
            return count
        if epoch_step is not None:
            self.step = epoch_step
            return epoch_step
        if self.step is None:
            return self.lines
        return self.step


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    steps = _Steps()
    last_step = 0
    for line in iter_lines(path, skipped):
        if b":" not in line and b"=" not in line:
            if line.strip():
                steps_only = steps.of(line)  # a heading such as `Epoch 3`
                last_step = max(last_step, steps_only)
                skipped.skip("no metric on the line", len(line))
            continue
        record = _metrics(line, options)
        if not record:
            steps.of(line)
            skipped.skip("no metric on the line", len(line))
            continue
        step = max(steps.of(line), last_step)  # a log is in step order; a repeat stays put
        last_step = step
        record[R.STEP] = step
        yield record
