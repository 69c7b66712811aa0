"""Plain and tqdm training logs of the seed's kind.

Understood lines (anywhere in a line, after ANSI colours; `\\r` redraws split a line):
    tqdm bar postfix    `... 1200/25000 [07:59<2:46:40, 2.50it/s, loss=21.5, lr=0.00e+00]`
    key=value lines     `loss=18.2 lr=1.50e-05`
    eval                `[Eval] loss: 22.3, perplexity: 485165195.41`
    at a step           `Step 1000: loss=101.40, kd=21.14, feature=40.79, attention=0.49`
    warnings            `[Warning] lm_loss produced non-finite value (nan); clamping to zero.`
    scheduler plan      `[Scheduler] Optimizer steps: 4,687`
    accumulation        `gradient_accumulation_steps: 16`
    perplexity          `Perplexity: 485,165,195.41`

Steps: a tqdm bar counts micro-batches (with gradient accumulation the bar advances once per
batch), so its count becomes `micro_step` (summed over successive per-epoch bars) and
`step` = micro_step // accumulation. `Step N:` lines give the optimizer step directly. Their
values are the training log's (a plain `loss=` is a training loss), except in a log whose
tqdm bar already shows the training loss: there they are evaluations (the seed printed its
evaluations so), as they are on a line that says eval/val. Consecutive redraws with the same
postfix carry no new value and yield nothing.

Every pattern is linear in the line (bounded names and spans), and a line's pairs are read
from its first MAX_SCAN_BYTES only: a line of 80 KB of junk costs microseconds.

Sampling: a long run of redraws (one per micro-batch) is read at about one redraw per
`logging_steps` optimizer steps (default 10, the bundled trainer's logging interval), like a
trainer's periodic log line, but no more than MAX_SAMPLES_PER_WINDOW a MiB; a window of a run
that holds a nan/inf is read entirely: every non-finite value and every line that is not a
redraw is still read. This keeps the parser near disk speed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import to_number, to_step
from distill_doctor.postmortem.lines import LONG_LINE, MAX_LINE_BYTES, iter_blocks
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.redraws import has_nonfinite, sample_redraws
from distill_doctor.postmortem.skipped import Skipped

NAME = "seed-text"
DESCRIPTION = "plain/tqdm training logs (loss=, lr=, [Eval], Step N:, [Warning], [Scheduler])"

_NUMBER = (
    rb"[-+]?(?:nan|inf|infinity|\d[\d,]{0,40}\.?\d{0,40}(?:[eE][-+]?\d{1,4})?"
    rb"|\.\d{1,40}(?:[eE][-+]?\d{1,4})?)"
)
_PAIR = re.compile(rb"([A-Za-z_][\w/]{0,63})\s{0,8}=\s{0,8}(" + _NUMBER + rb")", re.IGNORECASE)
_COLON_PAIR = re.compile(
    rb"([A-Za-z_][\w/ ]{0,63}?)\s{0,8}[:=]\s{0,8}(" + _NUMBER + rb")", re.IGNORECASE
)
_BAR = re.compile(rb"(\d{1,12})/(\d{1,12}) \[")
_STEP_LINE = re.compile(rb"^[ \t]{0,16}Step[ \t]{1,8}(\d[\d,]{0,20})[ \t]{0,8}:", re.IGNORECASE)
_ANSI = re.compile(rb"\x1b\[[0-9;?]{0,32}[A-Za-z]")
_SCHEDULER = re.compile(
    rb"(?:optimizer|total|training)\s{1,8}steps\s{0,8}:\s{0,8}(\d[\d,]{0,20})", re.I
)
_ACCUMULATION = re.compile(
    rb"gradient[_ ]accumulation(?:[_ ]steps)?\s{0,8}[:=]\s{0,8}(\d{1,9})", re.I
)
_PERPLEXITY = re.compile(rb"(?:perplexity|ppl)\s{0,8}[:=]\s{0,8}(" + _NUMBER + rb")", re.IGNORECASE)
_EVAL_WORDS = re.compile(rb"\b(?:eval|evaluation|val|valid|validation|test)\b", re.IGNORECASE)
MAX_SCAN_BYTES = 16 * 1024  # no metric line is longer; the rest of a longer one is not read
DEFAULT_SAMPLE_STEPS = 10
MIN_RUN_BYTES = 8192  # shorter runs of redraws (a few dozen) are read whole
# At most 128 sampled redraws per window (1 MiB) of a run: a bar redrawn at every step of a
# million-step run still gives a curve of ~12,000 points per 100 MB; denser costs time and
# shows nothing more (a non-finite value is never sampled away: its window is read whole).
MAX_SAMPLES_PER_WINDOW = 128
WINDOW_BYTES = 1024 * 1024


def _pairs(
    pattern: re.Pattern[bytes], text: bytes, options: ParseOptions, prefix: str = ""
) -> dict[str, object]:
    found: dict[str, object] = {}
    for name, value in pattern.findall(text[:MAX_SCAN_BYTES]):
        key = options.key(prefix + name.decode("ascii", "replace"))
        number = to_number(value.decode("ascii"))
        if key is not None and number is not None:
            found[key] = number
    return found


class _SeedState:
    """Bounded state of one log: where the step counter is and what was last emitted."""

    def __init__(self, options: ParseOptions, skipped: Skipped) -> None:
        self.options = options
        self.bar_has_loss = False  # the bar's postfix shows the training loss (the seed's way)
        self.accumulation = options.accumulation
        self.sample_steps = options.logging_steps or DEFAULT_SAMPLE_STEPS
        self.skipped = skipped
        self.step = 0
        self.micro = 0
        self.bar_offset = 0  # micro-batches of the finished per-epoch bars
        self.bar_count = 0
        self.bar_total = 0
        self.last_postfix = b""

    def _accumulation(self) -> int:
        return self.accumulation or 1

    def bar(self, line: bytes, eq: int) -> dict[str, object] | None:
        match = _BAR.search(line, 0, eq)
        postfix = line[line.rfind(b" ", 0, eq) + 1 :]  # from the first key to the line's end
        if match is not None:
            count, total = int(match.group(1)), int(match.group(2))
            if count < self.bar_count:  # a new bar: the next epoch starts counting from 0
                self.bar_offset += max(self.bar_total, self.bar_count)
            self.bar_count, self.bar_total = count, total
            self.micro = self.bar_offset + count
            self.step = self.micro // self._accumulation()
        if postfix == self.last_postfix:
            return None
        self.last_postfix = postfix
        record = _pairs(_PAIR, postfix, self.options)
        if not record:
            return None
        if match is not None and R.LOSS in record:
            self.bar_has_loss = True
        if match is not None:
            record[R.MICRO_STEP] = self.micro
        return record

    def line(self, line: bytes) -> dict[str, object] | None:
        """One physical line (no `\\r`, no `\\n`) -> a record without its step, or None."""
        if b"\x1b" in line:
            line = _ANSI.sub(b"", line)
        if b"[Eval]" in line:
            text = line[line.find(b"[Eval]") + 6 :]
            return _pairs(_COLON_PAIR, text, self.options, "eval_") or None
        head = line[:24].lstrip()[:4]
        step_line = _STEP_LINE.match(line) if head in (b"Step", b"step", b"STEP") else None
        if step_line is not None:
            step = to_step(step_line.group(1).decode("ascii"))
            self.step = step if step is not None else self.step
            rest = line[step_line.end() :]
            is_eval = self.bar_has_loss or _EVAL_WORDS.search(rest[:MAX_SCAN_BYTES]) is not None
            return _pairs(_PAIR, rest, self.options, "eval_" if is_eval else "") or None
        if b"arning" in line or b"non-finite" in line:
            return {R.WARNING: line.decode("utf-8", "replace").strip()}
        eq = line.find(b"=")
        if eq > 0:
            return self.bar(line, eq)
        return self.facts(line)

    def facts(self, line: bytes) -> dict[str, object] | None:
        if b"[Scheduler]" in line:
            found = _SCHEDULER.search(line)
            return {R.SCHEDULER_STEPS: int(found.group(1).replace(b",", b""))} if found else None
        if b"ccumulation" in line:
            found = _ACCUMULATION.search(line)
            if found and self.accumulation is None:
                self.accumulation = int(found.group(1))
            return None
        if b"erplexity" in line or b"ppl" in line:
            found = _PERPLEXITY.search(line)
            number = to_number(found.group(1).decode("ascii")) if found else None
            if number is not None:
                return {R.PPL: number}
        self.skipped.skip("no metric on the line", len(line))
        return None

    def run_stride(self, run: bytes, first_end: int) -> int:
        """Bytes between two sampled redraws of a run, or 0 to read it whole. Redraws are of
        near-equal length, so bytes stand in for redraws without counting them."""
        if len(run) < MIN_RUN_BYTES or has_nonfinite(run):
            return 0
        first = _BAR.search(run, 0, first_end)
        last = _BAR.search(run, run.rfind(b"\r"))
        if first is None or last is None:
            return 0
        micro_batches = int(last.group(1)) - int(first.group(1))
        if micro_batches <= 0:  # a new bar starts inside the run
            return 0
        stride = len(run) * self.sample_steps * self._accumulation() // micro_batches
        return max(stride, len(run) // MAX_SAMPLES_PER_WINDOW) if stride > 2 * first_end else 0

    def lines(self, segment: bytes) -> Iterator[bytes]:
        """The lines of a `\n`-free segment: its redraws, sampled when it is a long run. A
        run is taken a window at a time, so a NaN costs reading its window whole, not the
        whole run (a bar redrawn for a whole training run is one `\n`-free segment)."""
        pos = 0
        while len(segment) - pos > WINDOW_BYTES:
            cut = segment.rfind(b"\r", pos, pos + WINDOW_BYTES)
            if cut <= pos:
                break
            yield from self._run_lines(segment[pos:cut])
            pos = cut + 1
        yield from self._run_lines(segment[pos:] if pos else segment)

    def _run_lines(self, run: bytes) -> Iterator[bytes]:
        first_end = run.find(b"\r")
        if first_end < 0:
            return iter((run,))
        stride = self.run_stride(run, first_end)
        if stride:
            return sample_redraws(run, stride)
        return iter(run.split(b"\r"))


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    state = _SeedState(options, skipped)
    for block in iter_blocks(path, skipped, breaks=b"\r\n"):
        for segment in block.split(b"\n"):
            if segment.endswith(b"\r"):  # CRLF: the line's end, not one more redraw
                segment = segment[:-1]
            for line in state.lines(segment):
                if len(line) > MAX_LINE_BYTES:
                    skipped.skip(LONG_LINE, len(line))
                    continue
                record = state.line(line) if line else None
                if record is not None:
                    record[R.STEP] = state.step
                    yield record
