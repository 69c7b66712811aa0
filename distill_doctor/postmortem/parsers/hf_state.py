"""Hugging Face `trainer_state.json`: `log_history` entries become records; `max_steps` is
the run's planned optimizer steps.

The file is one JSON document, but it is streamed: its top-level values are decoded one at a
time and `log_history` one entry at a time, so a 200 MB state costs a few chunks of memory,
not the whole file (and its objects) at once. A value or an entry over MAX_VALUE_BYTES, a cut
off file or broken JSON ends the reading with what was read so far, counted as skipped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.inputs import LogInput, iter_chunks
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.parsers.jsonl import Layouts
from distill_doctor.postmortem.skipped import Skipped

NAME = "hf-trainer-state"
DESCRIPTION = "Hugging Face trainer_state.json (log_history)"
MAX_VALUE_BYTES = 4 * 1024 * 1024  # one log entry or one other top-level value
_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[\s,]*")
_KEY = re.compile(r'\s*"((?:[^"\\]|\\.){0,200})"\s*:\s*')


class _Buffer:
    """Decoded text of the file with a read position; more is read when a value runs past the
    end. Text before the position is dropped as the reading moves on."""

    def __init__(self, source: LogInput, skipped: Skipped) -> None:
        self.chunks = iter_chunks(source, skipped)
        self.text = ""
        self.pos = 0
        self.done = False
        self.tail = b""  # bytes of a UTF-8 character cut by a chunk boundary
        self.one_by_one_until = 0  # where a failed `values` cut was: single values up to there

    def more(self) -> bool:
        if self.done:
            return False
        chunk = next(self.chunks, None)
        if chunk is None:
            self.done = True
            chunk = b""
        data = self.tail + chunk
        cut = len(data) if self.done else _utf8_cut(data)
        self.tail = data[cut:]
        self.text = self.text[self.pos :] + data[:cut].decode("utf-8", errors="replace")
        self.one_by_one_until -= self.pos
        self.pos = 0
        return True

    def values(self) -> list | None:
        """The array's values from the position to the last `}` before a `]`, decoded in one
        call, or None (then `value` goes one at a time). An object is prefix-free: a cut that
        decodes as a list ends exactly on a value's end. A cut inside a string or a nested
        object does not decode; values are then read one at a time past that cut."""
        close = self.text.find("]", self.pos)
        end = self.text.rfind("}", self.pos, len(self.text) if close < 0 else close) + 1
        if end <= max(self.pos, self.one_by_one_until):
            return None
        try:
            values = json.loads(f"[{self.text[self.pos : end]}]")
        except (ValueError, RecursionError):
            self.one_by_one_until = end
            return None
        self.pos = end
        return values

    def skip_space(self) -> str:
        """The next character after whitespace and commas, or "" at the end."""
        while True:
            self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def key(self) -> str | None:
        while True:
            found = _KEY.match(self.text, self.pos)
            if found is not None:
                self.pos = found.end()
                return found.group(1)
            if len(self.text) - self.pos > 512 or not self.more():
                return None

    def value(self) -> tuple[bool, object]:
        """(True, the next JSON value), or (False, None) when it does not decode."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except RecursionError:
                return False, None
            except ValueError:
                if len(self.text) - self.pos > MAX_VALUE_BYTES or not self.more():
                    return False, None
                continue
            if end == len(self.text) and not self.done:
                self.more()  # a number may go on in the next chunk: decode it again
                continue
            self.pos = end
            return True, value


def _utf8_cut(data: bytes) -> int:
    """Where a chunk may be cut without splitting a UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: cut before it unless its character is complete
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def _entry_record(entry: object, skipped: Skipped, layouts: Layouts) -> dict | None:
    if type(entry) is not dict or "train_runtime" in entry:
        return None  # the summary entry repeats an average over the run
    record, step = layouts.metrics(entry)
    if step is None or not record:
        skipped.skip("log_history entry without a step or metric", len(str(entry)[:1000]))
        return None
    record[R.STEP] = step
    return record


def _history(buffer: _Buffer, skipped: Skipped, options: ParseOptions) -> Iterator[dict]:
    layouts = Layouts(options)
    buffer.pos += 1  # the "["
    while (char := buffer.skip_space()) not in ("]", ""):
        entries = buffer.values()
        if entries is None:
            ok, entry = buffer.value()
            if not ok:
                skipped.skip("log_history entry that is not valid JSON (cut off?)", 0)
                return
            entries = [entry]
        for entry in entries:
            record = _entry_record(entry, skipped, layouts)
            if record is not None:
                yield record
    if char == "]":
        buffer.pos += 1


_MAX_STEPS = re.compile(rb'"max_steps"\s*:\s*(\d{1,18})\s*[,}]')
TAIL_BYTES = 64 * 1024


def _max_steps_from_tail(path: LogInput) -> int | None:
    """`max_steps` follows `log_history` (keys are written sorted), near the end of the file:
    read first, so the planned steps come before the history that they put in context."""
    if not isinstance(path, Path):
        return None
    try:
        with open(path, "rb") as file:
            file.seek(max(0, path.stat().st_size - TAIL_BYTES))
            found = _MAX_STEPS.findall(file.read())
    except OSError:
        return None
    return int(found[-1]) if found else None


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    planned = _max_steps_from_tail(path)
    if planned:
        yield {R.STEP: 0, R.PLANNED_STEPS: planned}
    buffer = _Buffer(path, skipped)
    if buffer.skip_space() != "{":
        skipped.skip("not a JSON object", 0)
        return
    buffer.pos += 1
    last_step = 0
    while buffer.skip_space() not in ("}", ""):
        key = buffer.key()
        if key is None:
            skipped.skip("not valid JSON (cut off?)", 0)
            return
        if key == "log_history" and buffer.skip_space() == "[":
            for record in _history(buffer, skipped, options):
                last_step = max(last_step, record[R.STEP])  # type: ignore[call-overload]
                yield record
            continue
        ok, value = buffer.value()
        if not ok:
            skipped.skip(f"top-level value {key[:40]!r} that is not valid JSON", 0)
            return
        # Not found in the tail (a stream): the fact carries the last step seen, so the
        # stream stays in step order.
        if key == "max_steps" and isinstance(value, int) and not isinstance(value, bool):
            if value > 0 and value != planned:
                yield {R.STEP: last_step, R.PLANNED_STEPS: value}
