"""The bytes of one log as they are written: a regular file being appended to, or a pipe.

A file is read from its start and then polled (an fstat and a stat every POLL_SECONDS while
nothing new comes). Before each read it checks that the path still shows the bytes read so
far; when it does not, the follow of that file ends with `change` set, so that the caller
starts over on the new content:
    truncated   the file is shorter than what was read (`> train.log`, copytruncate);
    replaced    the path now names another file (rotation, an editor's save, a rewrite to a
                temporary file and a rename); the old file is read to its end first;
    rewritten   the same file, rewritten in place from its start (Lightning's CSVLogger
                rewrites metrics.csv when a new column appears): its first bytes changed.
A pipe ends when its writer closes it."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from distill_doctor.postmortem.inputs import CHUNK_BYTES, StreamInput

# Growth is seen within this; an idle file costs two stat calls per poll (benchmarks/
# watch_latency.py measures both the latency and the idle CPU).
POLL_SECONDS = 0.2
FINGERPRINT_BYTES = 256  # the first bytes read, to tell a rewrite from an append


class Tail:
    """One file (`path`) or pipe (`fd`) read as it grows; `stop` ends every wait at once."""

    def __init__(
        self, stop: threading.Event, path: Path | None = None, fd: int | None = None
    ) -> None:
        self.stop = stop
        self.path = path
        self.fd = fd
        self.file: BinaryIO | None = None
        self.offset = 0
        self.fingerprint = b""
        self.change: str | None = None  # truncated | replaced | rewritten: start over
        self.ended = False  # a pipe's writer closed it
        self.quiet = False  # everything written so far has been handed out
        self.grew_at = time.monotonic()  # when bytes last came

    def read(self) -> bytes:
        """What was written since the last read (b"": nothing now); never waits."""
        data = self._read_pipe() if self.fd is not None else self._read_file()
        if data:
            self.quiet = False
            self.grew_at = time.monotonic()
        return data

    def wait(self) -> None:
        """Until the next look: a poll interval, or data on a pipe, or the stop."""
        if self.fd is not None:
            select.select([self.fd], [], [], POLL_SECONDS)
        else:
            self.stop.wait(POLL_SECONDS)

    def chunks(self) -> Iterator[bytes]:
        """Bytes as they come, and b"" once each time the log goes quiet (a reader may hand
        out what it holds); ends at the stop, at a pipe's end or at a `change`."""
        said_quiet = False
        while True:
            data = self.read()
            if data:
                said_quiet = False
                yield data
                continue
            if self.change or self.ended or self.stop.is_set():
                return
            if not said_quiet:
                said_quiet = True
                yield b""
                continue  # the reader had its say; look again before waiting
            self.quiet = True
            self.wait()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def _read_pipe(self) -> bytes:
        if self.ended or not select.select([self.fd], [], [], 0)[0]:
            return b""
        data = os.read(self.fd, CHUNK_BYTES)  # type: ignore[arg-type]
        self.ended = not data
        return data

    def _read_file(self) -> bytes:
        if self.change:
            return b""
        if self.file is None:
            try:
                self.file = open(self.path, "rb")  # type: ignore[arg-type]  # noqa: SIM115
            except OSError:
                return b""  # not there yet, or gone for a moment mid-rotation
        if self.offset:
            change = self._changed()
            if change is not None:
                rest = self.file.read(CHUNK_BYTES) if change == "replaced" else b""
                if rest:  # written to the old file before it was rotated away
                    self.offset += len(rest)
                    return rest
                self.change = change
                return b""
        data = self.file.read(CHUNK_BYTES)
        if len(self.fingerprint) < FINGERPRINT_BYTES and data:
            self.fingerprint += data[: FINGERPRINT_BYTES - len(self.fingerprint)]
        self.offset += len(data)
        return data

    def _changed(self) -> str | None:
        assert self.file is not None
        own = os.fstat(self.file.fileno())
        if own.st_size < self.offset:
            return "truncated"
        try:
            named = os.stat(self.path)  # type: ignore[arg-type]
        except OSError:
            return None  # renamed away, the new file not there yet: keep the old one
        if (named.st_ino, named.st_dev) != (own.st_ino, own.st_dev):
            return "replaced"
        if own.st_size > self.offset and self.fingerprint:
            if os.pread(self.file.fileno(), len(self.fingerprint), 0) != self.fingerprint:
                return "rewritten"
        return None


class GrowingInput(StreamInput):
    """A log being written, as the read-once stream the postmortem's parsers take: the bytes
    read so far (what the format was sniffed from), then the rest as it is written. A partial
    last line stays in the parser's line buffer until its end comes."""

    def __init__(self, name: str, tail: Tail, head: bytes, suffix: str = "") -> None:
        # Not StreamInput.__init__: it reads a full 64 KiB head, which a log being written
        # may take hours to reach.
        self.name = name
        self.tail = tail
        self.head = head
        self._stream = None
        self._suffix = suffix

    @property
    def suffix(self) -> str:
        return self._suffix

    def chunks(self, skipped: object) -> Iterator[bytes]:
        if self.head:
            yield self.head
        yield from self.tail.chunks()
