"""One module per log format. Each module has:
    NAME: str                     the format's name (`--format-in` takes it)
    DESCRIPTION: str              one line for error messages and the README
    parse(path, skipped, options) -> Iterator[Record]   records in the file's order
Whether a file looks like a format (its first 64 KiB) is told by `postmortem.sniff`, which lists
the formats and imports a parser only once its format is chosen (jsonl and plain_text keep a
`sniff` of their own there: it needs their parsing code).
Parsers stream (memory flat however long the file), never raise on bad content (they count
what they skip in `skipped`), and yield records whose keys are those of
`distill_doctor.records`, each with a `step`. A record may carry `FINDING_KEY` (a finding the
log already holds, as a dict) instead of metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from distill_doctor.postmortem.keys import normalise, record_key

FINDING_KEY = "_finding"


@dataclass(frozen=True)
class ParseOptions:
    # Micro-batches per optimizer step: a tqdm bar counts micro-batches, `step` counts optimizer
    # steps. None: read it from the log when it says, else 1.
    accumulation: int | None = None
    # Optimizer steps between two HF Trainer log lines, which carry no step of their own.
    logging_steps: int | None = None
    # `--map loss=train_loss_step`: the user's choice of a log name (normalised) for a record
    # key. A mapped key takes no other name: `train_loss_epoch` no longer becomes `loss`.
    key_map: Mapping[str, str] = field(default_factory=dict)
    # Names already looked up through the map (a log repeats a few names millions of times).
    _mapped: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def key(self, raw_name: str) -> str | None:
        """The record key of a metric name, the user's map first."""
        if not self.key_map:
            return record_key(raw_name)
        if raw_name not in self._mapped:
            if len(self._mapped) >= 4096:  # bounded, whatever names a file invents
                self._mapped.clear()
            name = normalise(raw_name)
            key = self.key_map.get(name) or record_key(raw_name)
            taken = name not in self.key_map and key in self.key_map.values()
            self._mapped[raw_name] = None if taken else key
        return self._mapped[raw_name]
