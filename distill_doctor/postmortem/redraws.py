"""Runs of tqdm redraws: a progress bar written to a file redraws itself with `\\r` at every
iteration, so one "line" of a log can hold thousands of near-identical redraws. Reading each
one costs more than the whole rest of the log; when none holds a non-finite value, a sample
(evenly spaced by bytes, the first and the last always kept) says the same."""

from __future__ import annotations

import re
from collections.abc import Iterator

# "nan" or "inf", lowercase as Python, numpy, torch and tqdm print them. One regex pass with a
# literal first byte runs at memchr speed (two `in` scans cost twice); it also matches "nf" in
# words such as "info", which only means that run is read whole.
_NONFINITE = re.compile(rb"n(?:an|f)")


def has_nonfinite(run: bytes) -> bool:
    return _NONFINITE.search(run) is not None


def sample_redraws(run: bytes, byte_stride: int) -> Iterator[bytes]:
    """The redraws of a `\\r`-joined run, about one per `byte_stride` bytes: the first, then
    the first to start at least `byte_stride` bytes after the previous sample, and the last."""
    last_start = run.rfind(b"\r") + 1
    pos = 0
    while pos < last_start:
        end = run.find(b"\r", pos)
        yield run[pos:end]
        jump = run.find(b"\r", pos + byte_stride)
        pos = last_start if jump < 0 else max(end, jump) + 1
    yield run[last_start:]
