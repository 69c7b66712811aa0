"""Hugging Face Trainer stdout: the dicts `Trainer.log` prints, between tqdm redraws.
    transformers 4:  {'loss': 2.31, 'grad_norm': nan, 'learning_rate': 0.0, 'epoch': 0.5}
    transformers 5:  {'loss': '4.436', 'grad_norm': '0.2711', 'learning_rate': '1e-05', ...}
    eval:            {'eval_loss': 1.38, 'eval_runtime': 2.4, ..., 'epoch': 1.0}
    summary:         {'train_runtime': 61.2, ..., 'train_loss': 2.1, 'epoch': 3.0}
    scripts:         Step: 40 {'loss': 2.3, ...}   or JSON-quoted {"loss": 2.3, ...}
Dicts are read with `ast.literal_eval` after bare nan/inf become strings, never `eval()`.
The dicts carry no step: the Trainer's tqdm bar counts optimizer steps, so the last bar count
seen is the step; without a bar, the n-th training log is step n * logging_steps.

Real logs are messier than that. With `2>&1` the bar (stderr) and the dicts (stdout) arrive
out of order, a dict is glued to the end of a bar, or a warning cuts a dict in two: the
pairs on either side of the cut are still read (the one cut through is lost), and training
logs keep their order (each one at least one step after the last).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import STEP_NAMES, normalise, to_number, to_step
from distill_doctor.postmortem.lines import iter_lines
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "hf-stdout"
DESCRIPTION = "Hugging Face Trainer stdout ({'loss': ..., 'learning_rate': ...} lines)"

MAX_DICT_CHARS = 64 * 1024  # a log dict is a few hundred characters; more is not one
# Every pattern is bounded: no span it scans can grow with the line.
_BARE = re.compile(r"(?<=[:\s\[,(])(-?)(nan|inf|infinity)(?=\s{0,8}[,}\])])", re.IGNORECASE)
_BAR = re.compile(r"(\d{1,12})/(\d{1,12}) \[")
_STEP_PREFIX = re.compile(r"\b(?:global[_ ])?step\s{0,4}[:=]?\s{0,4}(\d{1,15})\b", re.IGNORECASE)
_NUMBER = r"[-+]?(?:nan|inf(?:inity)?|\d{1,40}(?:\.\d{0,40})?(?:[eE][-+]?\d{1,4})?|\.\d{1,40})"
# One `'name': value` pair, quoted either way, the value bare or quoted (transformers 5).
_PAIR = re.compile(
    r"""['"]([A-Za-z_][\w/.\- ]{0,80})['"]\s{0,4}:\s{0,4}['"]?("""
    + _NUMBER
    + r""")['"]?\s{0,4}[,}]""",
    re.IGNORECASE,
)


def parse_dict_line(text: str) -> dict[str, object] | None:
    """The Python dict in a line, with nan/inf kept, or None when it does not parse."""
    if len(text) > MAX_DICT_CHARS:
        return None
    safe = _BARE.sub(lambda m: f"'{m.group(1)}{m.group(2)}'", text)
    try:
        value = ast.literal_eval(safe)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _dict_span(part: str) -> tuple[int, int]:
    """Where the dict of a line starts ("{'" or '{"') and ends (its last "}"; -1: none)."""
    starts = [i for i in (part.find("{'"), part.find('{"')) if i >= 0]
    start = min(starts) if starts else -1
    return start, part.rfind("}") if start >= 0 else -1


def _pairs(text: str) -> dict[str, object]:
    """The `'name': number` pairs of a broken dict, each whole pair that survived."""
    return {name: value for name, value in _PAIR.findall(text[:MAX_DICT_CHARS])}


class _Steps:
    """The step of each dict: the training bar's last count, else a count of training logs.

    The training bar is the first one the Trainer draws; evaluation bars (over eval batches,
    another total) come and go between its redraws and must not move the step."""

    def __init__(self, logging_steps: int) -> None:
        self.logging_steps = logging_steps
        self.train_total: str | None = None
        self.bar_step = 0
        self.train_logs = 0
        self.last_train = -1  # the step of the last training log
        self.last = 0  # the step of the last record: steps never go back

    def see_bar(self, text: str) -> None:
        counts = _BAR.findall(text[-4096:])  # a bar's count sits near its end
        if not counts:
            return
        count, total = counts[-1]
        if self.train_total is None:
            self.train_total = total
        if total == self.train_total:
            self.bar_step = int(count)

    def of(self, raw: dict[str, object], is_train: bool, stated: int | None) -> int:
        if stated is None:
            for name, value in raw.items():
                if normalise(str(name)) in STEP_NAMES:
                    stated = to_step(value)
                    if stated is not None:
                        break
        if stated is not None:
            step = stated
        else:
            if is_train:
                self.train_logs += 1
            step = self.bar_step or self.train_logs * self.logging_steps
            if is_train:  # a bar drawn late (stderr) must not put two logs on one step
                step = max(step, self.last_train + 1)
            step = max(step, self.last)
        if is_train:
            self.last_train = step
        self.last = max(self.last, step)
        return step


def _record(
    raw: dict[str, object], steps: _Steps, options: ParseOptions, stated: int | None
) -> dict[str, object] | None:
    if "train_runtime" in raw:  # the end-of-training summary repeats an average; not a step
        return None
    record: dict[str, object] = {}
    for name, value in raw.items():
        key = options.key(str(name))
        number = to_number(value) if key is not None else None
        if number is not None:
            record[key] = number  # type: ignore[index]
    if not record:
        return None
    is_train = R.LOSS in record or R.LR in record or R.GRAD_NORM in record
    record[R.STEP] = steps.of(raw, is_train, stated)
    return record


class _Reader:
    """Dicts of a log in order, with the head of a dict cut by a warning held until its tail
    (a later line that closes it without opening another) comes."""

    def __init__(self, options: ParseOptions, skipped: Skipped) -> None:
        self.steps = _Steps(options.logging_steps or 1)
        self.options = options
        self.skipped = skipped
        self.cut: dict[str, object] | None = None  # pairs of a dict's head
        self.cut_step: int | None = None

    def flush(self) -> Iterator[dict[str, object]]:
        if self.cut:
            record = _record(self.cut, self.steps, self.options, self.cut_step)
            if record is not None:
                yield record
        self.cut = None

    def part(self, part: str) -> Iterator[dict[str, object]]:
        start, end = _dict_span(part)
        if start < 0:
            if self.cut is not None and "}" in part and ("':" in part or '":' in part):
                self.cut.update(_pairs(part))  # the tail of a cut dict
                yield from self.flush()
            elif "it/s" in part or "s/it" in part:
                self.steps.see_bar(part)
            return
        yield from self.flush()
        before = part[:start]
        if "it/s" in before or "s/it" in before or "/" in before:
            self.steps.see_bar(before)  # a dict glued to the bar that ends before it
        found = _STEP_PREFIX.search(before[-64:])
        stated = to_step(found.group(1)) if found else None
        raw = parse_dict_line(part[start : end + 1]) if end > start else None
        if raw is None:
            pairs = _pairs(part[start:])
            if not pairs:
                self.skipped.skip("dict line that does not parse", len(part))
                return
            if end > start:  # whole but unreadable: keep what pairs there are
                record = _record(pairs, self.steps, self.options, stated)
                if record is not None:
                    yield record
                return
            self.cut, self.cut_step = pairs, stated
            return
        record = _record(raw, self.steps, self.options, stated)
        if record is not None:
            yield record


def _find_dict(line: bytes, pos: int) -> int:
    """Where the next `{'` or `{"` starts: one memchr-speed scan for the brace."""
    while (brace := line.find(b"{", pos)) >= 0:
        if line[brace + 1 : brace + 2] in (b"'", b'"'):
            return brace
        pos = brace + 1
    return -1


def _parts(line: bytes) -> Iterator[bytes]:
    """The parts of a `\r`-redrawn line that can matter: the first (the tail of a cut dict),
    each part with a dict and the bar just before it, and the last (the bar a later dict
    follows). A 200 MB run of redraws costs a few scans at C speed, not a loop per redraw."""
    first_end = line.find(b"\r")
    if first_end < 0:
        yield line
        return
    yield line[:first_end]
    pos = first_end + 1
    while (brace := _find_dict(line, pos)) >= 0:
        start = max(line.rfind(b"\r", pos, brace) + 1, pos)
        if start > pos:
            yield line[max(line.rfind(b"\r", pos, start - 1) + 1, pos) : start - 1]
        end = line.find(b"\r", brace)
        if end < 0:
            yield line[start:]
            return
        yield line[start:end]
        pos = end + 1
    if pos < len(line):
        yield line[max(line.rfind(b"\r", pos) + 1, pos) :]


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    reader = _Reader(options, skipped)
    for raw_line in iter_lines(path, skipped):
        for part in _parts(raw_line):
            yield from reader.part(part.decode("utf-8", errors="replace"))
    yield from reader.flush()
