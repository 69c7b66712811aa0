"""Which parser reads a file: sniffed from its first 64 KiB and its name, or named by the user.
A directory stands for the TensorBoard event files under it (a run directory); `-` and
`/dev/stdin` for stdin, read once."""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from distill_doctor.errors import InputError
from distill_doctor.postmortem.inputs import (
    LogInput,
    StreamInput,
    check_regular,
    is_stream_name,
    open_stream,
    read_head,
)
from distill_doctor.postmortem.sniff import FORMATS, Format

BY_NAME = {format.name: format for format in FORMATS}


def load_parser(format: Format) -> ModuleType:
    """A format's parser module, imported on first use (see postmortem.sniff)."""
    return importlib.import_module(f"distill_doctor.postmortem.parsers.{format.module}")


def all_parsers() -> list[ModuleType]:
    """Every parser, in sniffing order."""
    return [load_parser(format) for format in FORMATS]


def formats_understood() -> str:
    return "; ".join(f"{p.NAME}: {p.DESCRIPTION}" for p in all_parsers())


# `doctor train` writes both beside each other; events.jsonl holds everything the
# TensorBoard scalars hold and more (the config, the plan, findings), so it stands for the run.
RUN_LOG = "events.jsonl"


def expand(path: LogInput) -> list[LogInput]:
    """The files a path stands for: stdin or a pipe, read once; itself; a bundled-trainer run
    directory's events.jsonl; else a run directory's TensorBoard event files."""
    if isinstance(path, StreamInput):
        return [path]
    if is_stream_name(str(path)):
        return [open_stream(path)]
    check_regular(path)
    if not path.is_dir():
        return [path]
    if (path / RUN_LOG).is_file():
        return [path / RUN_LOG]
    found = sorted(p for p in path.rglob("*tfevents*") if p.is_file())
    if not found:
        raise InputError(
            f"{path}: a directory with neither an {RUN_LOG} nor TensorBoard event files "
            "(events.out.tfevents.*); give the log files themselves."
        )
    return found


# Prose with examples in it (a README quoting log lines) is not a log: Markdown by its name, or
# by its headings and code fences.
DOCUMENT_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".adoc", ".html", ".htm", ".ipynb"})
_HEADING = re.compile(rb"^#{1,6} \S", re.MULTILINE)
_FENCE = re.compile(rb"^ {0,3}(?:```|~~~)", re.MULTILINE)


def looks_like_document(head: bytes, path: LogInput) -> bool:
    if path.suffix.lower() in DOCUMENT_SUFFIXES:
        return True
    return _HEADING.search(head) is not None and _FENCE.search(head) is not None


def sniff(path: LogInput) -> ModuleType | None:
    """The parser whose format the file's head shows, or None (also for a document)."""
    head = read_head(path)
    if not head.strip() or looks_like_document(head, path):
        return None
    return _first_sniffed(head, path)


def _first_sniffed(head: bytes, path: LogInput) -> ModuleType | None:
    found = next((format for format in FORMATS if format.sniff(head, path)), None)
    return load_parser(found) if found is not None else None


def detect(path: LogInput, forced: str | None = None) -> ModuleType:
    """The parser for a file, or an InputError naming the formats understood."""
    if forced is not None:
        if forced not in BY_NAME:
            raise InputError(f"Unknown log format {forced!r}; known: {', '.join(BY_NAME)}.")
        return load_parser(BY_NAME[forced])
    head = read_head(path)
    if not head.strip():
        raise InputError(f"{path}: the file is empty. Formats understood: {formats_understood()}.")
    if looks_like_document(head, path):
        raise InputError(
            f"{path}: a document (Markdown or similar), not a training log; its example lines "
            "are not a run. If it really is a log, name its format with --format-in."
        )
    parser = _first_sniffed(head, path)
    if parser is not None:
        return parser
    raise InputError(
        f"{path}: not a training log this tool recognises (looked at its first "
        f"{len(head):,} bytes). Formats understood: {formats_understood()}. If it is one of "
        "these, name it with --format-in."
    )
