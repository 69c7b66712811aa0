"""Streaming line reading for every text parser: large binary chunks, a cap on line length,
undecodable bytes replaced, LF and CRLF alike. Memory stays at one chunk plus one line.
Sources are files or streams read once (see `inputs`)."""

from __future__ import annotations

from collections.abc import Iterator

from distill_doctor.postmortem.inputs import LogInput, iter_chunks
from distill_doctor.postmortem.skipped import Skipped

MAX_LINE_BYTES = 1024 * 1024  # no metric line is this long; a longer one is garbage or a dump
LONG_LINE = "line over 1 MiB"


def _first_break(data: bytes, breaks: bytes) -> int:
    found = [i for i in (data.find(bytes([b])) for b in breaks) if i >= 0]
    return min(found) if found else -1


def iter_blocks(path: LogInput, skipped: Skipped, breaks: bytes = b"\n") -> Iterator[bytes]:
    """Blocks of whole lines: each ends just before a line break (any byte of `breaks`; a
    tqdm log also breaks at `\r`), or at the end of the file.

    A line longer than MAX_LINE_BYTES is dropped and counted; the block that held it is never
    built, so a 10 GB line costs one chunk of memory."""
    carry = b""
    dropping = 0  # bytes of an over-long line dropped so far
    for chunk in iter_chunks(path, skipped):
        if dropping:
            end = _first_break(chunk, breaks)
            if end < 0:
                dropping += len(chunk)
                continue
            skipped.skip(LONG_LINE, dropping + end)
            dropping, chunk = 0, chunk[end + 1 :]
        data = carry + chunk if carry else chunk
        cut = max(data.rfind(bytes([b])) for b in breaks)
        if cut < 0:
            carry = data
        else:
            carry = data[cut + 1 :]
            yield data[:cut]
        if len(carry) > MAX_LINE_BYTES:
            dropping, carry = len(carry), b""
    if dropping:
        skipped.skip(LONG_LINE, dropping)
    elif carry:
        yield carry


def iter_lines(path: LogInput, skipped: Skipped) -> Iterator[bytes]:
    """Lines without their LF/CRLF ending; over-long lines inside a block are counted too."""
    for block in iter_blocks(path, skipped):
        for line in block.split(b"\n"):
            if len(line) > MAX_LINE_BYTES:
                skipped.skip(LONG_LINE, len(line))
                continue
            yield line[:-1] if line.endswith(b"\r") else line


def iter_text_lines(path: LogInput, skipped: Skipped) -> Iterator[str]:
    """Decoded lines; bytes that are not UTF-8 become U+FFFD rather than an error."""
    for lines in iter_text_line_lists(path, skipped):
        yield from lines


def iter_line_blocks(path: LogInput, skipped: Skipped) -> Iterator[bytes]:
    """Blocks of whole LF-separated lines, each block at most MAX_LINE_BYTES + 1 bytes unless
    it is one line alone, for a parser that reads many lines in one call (JSON lines): no
    line in them is over-long, so their lines need no check. Over-long lines are counted in
    the file's order and left out, by the length `iter_text_lines` gives them (a line whose
    bytes are over the cap but whose characters are not is kept, as a block of its own). A
    CR before an LF stays; bytes are not decoded. Memory: a chunk and a block."""
    for block in iter_blocks(path, skipped):
        start, size = 0, len(block)
        while size - start > MAX_LINE_BYTES:
            # The last line break in reach: every line before it is short enough.
            cut = block.rfind(b"\n", start, start + MAX_LINE_BYTES + 1)
            if cut >= 0:
                yield block[start:cut]
                start = cut + 1
                continue
            end = block.find(b"\n", start + MAX_LINE_BYTES + 1)
            end = size if end < 0 else end
            chars = len(block[start:end].decode("utf-8", errors="replace"))
            if chars > MAX_LINE_BYTES:
                skipped.skip(LONG_LINE, chars)
            else:
                yield block[start:end]
            start = end + 1
        if start <= size:
            yield block[start:] if start else block


def block_lines(block: bytes) -> list[str]:
    """A block's lines as `iter_text_lines` gives them: decoded, the CR of a CRLF gone."""
    lines = block.decode("utf-8", errors="replace").split("\n")
    return _without_cr(lines) if b"\r" in block else lines


def iter_text_line_lists(path: LogInput, skipped: Skipped) -> Iterator[list[str]]:
    """The lines of `iter_text_lines` a list per block: a block is decoded at once (it ends
    at a line break, never inside a character); an over-long line ends a list, and is
    counted before the next list, so skips are counted in the file's order."""
    for block in iter_blocks(path, skipped):
        lines = block.decode("utf-8", errors="replace").split("\n")
        # A decoded line is never longer than its bytes: a short block holds no long line.
        if len(block) > MAX_LINE_BYTES and max(map(len, lines)) > MAX_LINE_BYTES:
            yield from _around_long_lines(lines, skipped, b"\r" in block)
        else:
            yield _without_cr(lines) if b"\r" in block else lines


def _around_long_lines(lines: list[str], skipped: Skipped, has_cr: bool) -> Iterator[list[str]]:
    start = 0
    for index, line in enumerate(lines):
        if len(line) > MAX_LINE_BYTES:
            yield _without_cr(lines[start:index]) if has_cr else lines[start:index]
            skipped.skip(LONG_LINE, len(line))
            start = index + 1
    yield _without_cr(lines[start:]) if has_cr else lines[start:]


def _without_cr(lines: list[str]) -> list[str]:
    """CRLF lines end in `\r` after the split at LF: one `\r` goes, as the LF did."""
    return [line[:-1] if line.endswith("\r") else line for line in lines]
