"""The detector contract, shared by the live watchdog and the postmortem.

A detector is a small class with bounded state (O(window), never the whole run):
    DOC: RuleDoc                               its registry entry (kind="stream")
    update(record: Record) -> list[Finding]    called once per record, in step order
    finish() -> list[Finding]                  verdicts that need the whole run
Records may lack any key; a detector that never sees what it needs stays silent. Detectors
never import torch and never print. Optional:
    WATCHES: tuple[str, ...]   the record keys it reads ("eval_*" for a prefix); the suite
                               skips records with none of them. Without it: every record.
    update_many(records, runs, columns=None) -> list[tuple[int, Finding]]
                               `update` over a batch (the postmortem's hot path), each finding
                               with its record's index; `runs`: the batch's stretches of one
                               shape (`shape_runs`) that the detector watches, which may skip
                               some of `records`; `columns`: their `RunColumns`, each series
                               read once for every detector (None: it makes its own). It
                               decides the plain records inline, a whole run or block at once
                               where it can, and hands every other record to `update`: the
                               findings and its state are exactly `update`'s (tested).
An episode (a streak of bad records) is reported when it begins and may be restated, with its
totals, when it ends or in finish(): same id and step; consumers keep the latest statement
(`episodes.latest_per_episode`).

`RunFacts` carries what is known about the run from outside the stream (a config given to
`doctor postmortem --config`, or the trainer's plan); records may also carry the same facts
(`planned_steps`, `vocab_size`), and the stream wins when both say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from distill_doctor.findings import Finding
from distill_doctor.records import Record
from distill_doctor.registry import RuleDoc

# (start, end, shape): a stretch of a batch's records that share one shape (their keys).
ShapeRun = tuple[int, int, tuple[str, ...]]


@dataclass(frozen=True)
class RunFacts:
    planned_steps: int | None = None  # optimizer steps the run will take
    vocab_size: int | None = None
    mem_total_bytes: int | None = None
    # The logged `loss` is a weighted sum (CE + KD + feature...), not a cross-entropy: only
    # `loss_ce` may then be judged as a CE (a KD config says so before the log does).
    loss_is_combined: bool = False
    device: str | None = None  # "cpu", "cuda"...: advice differs (GPU clocks mean nothing on CPU)


class Detector(Protocol):
    DOC: ClassVar[RuleDoc]

    def update(self, record: Record) -> list[Finding]: ...

    def finish(self) -> list[Finding]: ...
