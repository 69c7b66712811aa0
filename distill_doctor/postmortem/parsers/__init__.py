"""One module per log format. Each module has:
    NAME: str                     the format's name (`--format-in` takes it)
    DESCRIPTION: str              one line for error messages and the README
    sniff(head: bytes, path) -> bool   does this file look like the format (first 64 KiB)?
    parse(path, skipped, options) -> Iterator[Record]   records in the file's order
Parsers stream (memory flat however long the file), never raise on bad content (they count
what they skip in `skipped`), and yield records whose keys are those of
`distill_doctor.records`, each with a `step`. A record may carry `FINDING_KEY` (a finding the
log already holds, as a dict) instead of metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

FINDING_KEY = "_finding"


@dataclass(frozen=True)
class ParseOptions:
    # Micro-batches per optimizer step: a tqdm bar counts micro-batches, `step` counts optimizer
    # steps. None: read it from the log when it says, else 1.
    accumulation: int | None = None
    # Optimizer steps between two HF Trainer log lines, which carry no step of their own.
    logging_steps: int | None = None
