"""Where a log's bytes come from: a regular file, or a stream read once (stdin as `-` or
`/dev/stdin`, a shell's `<(cmd)`, which is `/dev/fd/N`).

A stream cannot be read twice, so its first SNIFF_BYTES are kept for the format sniffer and
handed back, followed by the rest, to the one parser that reads it. A regular file is reopened
for every chunk and closed again, so a run merged from a thousand files holds no descriptor
between chunks (the open-file limit is often 1024). Anything else (a named FIFO, a device such
as /dev/zero, a socket) is refused: it may never end, or never start."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from distill_doctor.errors import InputError
from distill_doctor.postmortem.skipped import Skipped

CHUNK_BYTES = 8 * 1024 * 1024
# A Hugging Face log may open with pages of warnings and loading bars before its first dict.
SNIFF_BYTES = 64 * 1024
# A stream has no size: past this, the rest is not read (a log this long on a pipe is a
# mistake, and `yes loss=1 | doctor postmortem -` must end).
MAX_STREAM_BYTES = 8 * 1024**3
STREAM_CUT = "input past 8 GiB not read"
STDIN_NAMES = ("-", "/dev/stdin")
# Descriptors a shell or the caller already opened: `<(cmd)` is /dev/fd/63 on Linux.
_DESCRIPTOR_DIRS = ("/dev/fd", "/proc/self/fd")


class StreamInput:
    """A stream read once: its head is buffered at construction, `open()` hands out the head
    and then the rest, once."""

    def __init__(self, name: str, stream: BinaryIO) -> None:
        self.name = name
        self._stream: BinaryIO | None = stream
        self.head = _read_up_to(stream, SNIFF_BYTES)

    def __str__(self) -> str:
        return self.name

    @property
    def suffix(self) -> str:
        return ""

    def chunks(self, skipped: Skipped) -> Iterator[bytes]:
        if self._stream is None:
            raise InputError(f"{self.name}: a stream can be read only once; give it once.")
        stream, self._stream = self._stream, None
        read = len(self.head)
        if self.head:
            yield self.head
        while chunk := stream.read(CHUNK_BYTES):
            if read + len(chunk) > MAX_STREAM_BYTES:
                skipped.skip(STREAM_CUT, len(chunk))
                return
            read += len(chunk)
            yield chunk


LogInput = Path | StreamInput


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """`size` bytes or up to the end: a pipe's read() may return less than asked."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def is_stream_name(text: str) -> bool:
    return text in STDIN_NAMES or text.startswith(tuple(d + "/" for d in _DESCRIPTOR_DIRS))


def open_stream(path: Path) -> StreamInput:
    """stdin (`-`, `/dev/stdin`) or an open descriptor (`/dev/fd/N`) as a StreamInput."""
    text = str(path)
    try:
        if text in STDIN_NAMES:
            if sys.stdin.isatty():
                raise InputError(
                    "stdin is a terminal: pipe a log in (`cat train.log | doctor "
                    "postmortem -`) or name the file."
                )
            return StreamInput("<stdin>", sys.stdin.buffer)
        mode = os.stat(text).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)):
            raise InputError(f"{text}: not a pipe or a file; give a log file or `-` for stdin.")
        return StreamInput(text, open(text, "rb"))  # noqa: SIM115 - handed to the parser
    except OSError as err:
        raise InputError(f"{text}: cannot be read ({err.strerror}).") from None


def check_regular(path: Path) -> None:
    """A path that is missing, unreadable, or neither a regular file nor a directory: refused
    with the reason."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory.") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied; check the folder's permissions.") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror}).") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or special file"
    raise InputError(
        f"{path}: {kind}, not a log file; it may never end. Save the log to a file, or pipe "
        "it in as `-` (stdin)."
    )


def read_head(source: LogInput, size: int = SNIFF_BYTES) -> bytes:
    if isinstance(source, StreamInput):
        return source.head[:size]
    try:
        with open(source, "rb") as file:
            return file.read(size)
    except OSError as err:
        raise InputError(f"{source}: cannot be read ({err.strerror}).") from None


def iter_chunks(source: LogInput, skipped: Skipped) -> Iterator[bytes]:
    """The bytes of a log in chunks. A regular file is reopened at its offset for each chunk,
    so a paused reader (one of many merged streams) holds no open file."""
    if isinstance(source, StreamInput):
        yield from source.chunks(skipped)
        return
    offset = 0
    while True:
        try:
            with open(source, "rb") as file:
                file.seek(offset)
                chunk = file.read(CHUNK_BYTES)
        except OSError as err:
            skipped.skip(f"read failed ({err.strerror})", 0)
            return
        if not chunk:
            return
        offset += len(chunk)
        yield chunk
