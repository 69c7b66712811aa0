"""Stream detectors: one small module per bad pattern, shared by the live watchdog and the
postmortem. Adding a detector = one module + one line in `DETECTORS` + its tests.

Importing this package registers every detector's doc (kind="stream", codes DD2xx).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

from distill_doctor.detectors.all_labels_masked import AllLabelsMasked
from distill_doctor.detectors.base import Detector, RunFacts, ShapeRun
from distill_doctor.detectors.columns import RunColumns, run_columns
from distill_doctor.detectors.episodes import latest_per_episode
from distill_doctor.detectors.eval_frozen import EvalFrozen
from distill_doctor.detectors.eval_regression import EvalRegression
from distill_doctor.detectors.grad_explosion import GradExplosion
from distill_doctor.detectors.grad_nonfinite import GradNonfinite
from distill_doctor.detectors.grad_vanishing import GradVanishing
from distill_doctor.detectors.kd_signal_dead import KdSignalDead
from distill_doctor.detectors.loss_above_chance import LossAboveChance
from distill_doctor.detectors.loss_divergence import LossDivergence
from distill_doctor.detectors.loss_flat import LossFlat
from distill_doctor.detectors.loss_spike import LossSpike
from distill_doctor.detectors.lr_zero import LrZero
from distill_doctor.detectors.memory_growth import MemoryGrowth
from distill_doctor.detectors.memory_pressure import MemoryPressure
from distill_doctor.detectors.nonfinite_loss import NonfiniteLoss
from distill_doctor.detectors.nonfinite_rank import NonfiniteRank
from distill_doctor.detectors.overfitting import Overfitting
from distill_doctor.detectors.params_frozen import ParamsFrozen
from distill_doctor.detectors.perplexity_overflow import PerplexityOverflow
from distill_doctor.detectors.rank_desync import RankDesync
from distill_doctor.detectors.straggler_rank import StragglerRank
from distill_doctor.detectors.throughput_drop import ThroughputDrop
from distill_doctor.findings import Finding
from distill_doctor.records import STEP, Record

__all__ = [
    "DETECTORS",
    "Detector",
    "DetectorSuite",
    "RunColumns",
    "RunFacts",
    "ShapeRun",
    "run_detectors",
    "shape_runs",
]

# In code order (DD201...): the order findings of one record come out in.
DETECTORS: list[type] = [
    LrZero,
    NonfiniteLoss,
    ParamsFrozen,
    EvalFrozen,
    LossFlat,
    LossSpike,
    LossDivergence,
    GradExplosion,
    GradVanishing,
    LossAboveChance,
    PerplexityOverflow,
    MemoryPressure,
    ThroughputDrop,
    EvalRegression,
    GradNonfinite,
    Overfitting,
    AllLabelsMasked,
    MemoryGrowth,
    KdSignalDead,
    RankDesync,
    StragglerRank,
    NonfiniteRank,
]


# Record shapes (key tuples) whose detector lists are remembered: a log has a handful.
MAX_SHAPES = 1024


def watches(detector: Detector, keys: tuple[str, ...]) -> bool:
    """Whether a record with these keys can matter to the detector (see `Detector.WATCHES`)."""
    patterns = getattr(detector, "WATCHES", None)
    if patterns is None:
        return True
    for pattern in patterns:
        if pattern.endswith("*"):
            if any(key.startswith(pattern[:-1]) for key in keys):
                return True
        elif pattern in keys:
            return True
    return False


class DetectorSuite:
    """One instance of every detector, fed the same records. A record goes only to the
    detectors that watch one of its keys: a train record never wakes the eval detectors.

    A detector that raises is switched off and named in `crashed` (its id -> what it raised,
    where): one broken check must not take the report down, and the report must not call a
    run healthy on a check that did not finish. (The live watchdog guards its own calls.)"""

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.detectors: list[Detector] = [cls(facts) for cls in DETECTORS]
        self.crashed: dict[str, str] = {}
        # Per record shape, the bound updates to call: decided once per shape, not per record.
        self._by_shape: dict[tuple[str, ...], list] = {}
        # Per record shape, which detectors watch it (one flag per detector, in order).
        self._watching: dict[tuple[str, ...], tuple[bool, ...]] = {}

    def _updates(self, shape: tuple[str, ...]) -> list:
        updates = [
            (d, d.update)
            for d in self.detectors
            if watches(d, shape) and d.DOC.id not in self.crashed
        ]
        if len(self._by_shape) < MAX_SHAPES:
            self._by_shape[shape] = updates
        return updates

    def _watchers(self, shape: tuple[str, ...]) -> tuple[bool, ...]:
        flags = self._watching.get(shape)
        if flags is None:
            flags = tuple(watches(d, shape) for d in self.detectors)
            if len(self._watching) < MAX_SHAPES:
                self._watching[shape] = flags
        return flags

    def update(self, record: Record, shape: tuple[str, ...] | None = None) -> list[Finding]:
        """Findings of this record; `shape` is tuple(record) when the caller has it."""
        shape = shape or tuple(record)
        updates = self._by_shape.get(shape) or self._updates(shape)
        findings: list[Finding] = []
        for detector, update in updates:
            try:
                found = update(record)
            except Exception as error:  # noqa: BLE001 - see the class docstring
                self._switch_off(detector, error, _at_step("at", record.get(STEP)))
                continue
            if found:
                findings.extend(found)
        return findings

    def _switch_off(self, detector: Detector, error: Exception, where: str) -> None:
        self.crashed[detector.DOC.id] = f"{type(error).__name__}: {error}{where}"[:300]
        self._by_shape.clear()  # the remembered update lists still hold it

    def update_many(
        self,
        records: list[Record],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> list[tuple[int, Finding]]:
        """The findings of a batch of records (`runs`: its `shape_runs`; `columns`: their
        `RunColumns`, when the caller has them), each with its record's index, in the order
        `update` would give them one record at a time. Each detector takes the runs it
        watches in one call (`update_many` where it has one: no per-record dispatch on the
        hot path), all reading the same columns."""
        columns = run_columns(records, runs, columns)
        watching = [self._watchers(shape) for _, _, shape in runs]
        found: list[tuple[int, int, Finding]] = []  # record index, detector position, finding
        for position, detector in enumerate(self.detectors):
            kept = [j for j, flags in enumerate(watching) if flags[position]]
            if not kept or detector.DOC.id in self.crashed:
                continue
            if len(kept) < len(runs):
                its_runs, its_columns = [runs[j] for j in kept], [columns[j] for j in kept]
            else:
                its_runs, its_columns = runs, columns
            try:
                hits = _detector_hits(detector, records, its_runs, its_columns)
            except Exception as error:  # noqa: BLE001 - see the class docstring
                # a batch call: the step it crashed at is somewhere from its first record on
                first = records[its_runs[0][0]].get(STEP)
                self._switch_off(detector, error, _at_step("in the records from", first))
                continue
            found.extend((i, position, finding) for i, finding in hits)
        found.sort(key=_record_then_detector)  # stable: one detector's findings keep their order
        return [(index, finding) for index, _, finding in found]

    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        for detector in self.detectors:
            if detector.DOC.id in self.crashed:
                continue
            try:
                findings.extend(detector.finish())
            except Exception as error:  # noqa: BLE001 - see the class docstring
                self._switch_off(detector, error, " at the end of the run")
        return findings


def _at_step(words: str, step: object) -> str:
    return f" {words} step {step}" if isinstance(step, int) else ""


def _detector_hits(
    detector: Detector, records: list[Record], runs: list[ShapeRun], columns: list[RunColumns]
) -> list[tuple[int, Finding]]:
    """One detector's findings over a batch's runs, each with its record's index."""
    many = getattr(detector, "update_many", None)
    if many is not None:
        return many(records, runs, columns)
    update = detector.update
    return [(i, f) for start, end, _ in runs for i in range(start, end) for f in update(records[i])]


def _record_then_detector(hit: tuple[int, int, Finding]) -> tuple[int, int]:
    return hit[0], hit[1]


def shape_runs(shapes: list[tuple[str, ...]]) -> list[ShapeRun]:
    """(start, end, shape) of each stretch of records of one shape: a log repeats a shape for
    thousands of records, so a batch has a run or two (found by `groupby`, in C)."""
    runs: list[ShapeRun] = []
    start = 0
    for shape, group in groupby(shapes):
        end = start + len(list(group))
        runs.append((start, end, shape))
        start = end
    return runs


def run_detectors(records: Iterable[Record], facts: RunFacts | None = None) -> list[Finding]:
    """Every finding of every detector over a whole stream, in the order they were raised;
    an episode restated at its end is kept once, in its final statement."""
    suite = DetectorSuite(facts)
    findings: list[Finding] = []
    for record in records:
        findings.extend(suite.update(record))
    findings.extend(suite.finish())
    return latest_per_episode(findings)
