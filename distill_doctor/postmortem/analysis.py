"""Parse the logs of one run, merge them by step, run the detectors: the postmortem's data.

Everything streams: records pass through the detectors and the plot's bounded curves and are
then dropped, so memory stays flat however long the logs are."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from operator import contains
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.detectors import DetectorSuite, RunFacts, ShapeRun, shape_runs
from distill_doctor.detectors.columns import RunColumns, run_columns
from distill_doctor.detectors.episodes import latest_per_episode
from distill_doctor.findings import Finding
from distill_doctor.postmortem.formats import detect, expand
from distill_doctor.postmortem.merge import merge_by_step
from distill_doctor.postmortem.parsers import FINDING_KEY, ParseOptions
from distill_doctor.postmortem.series import Curves
from distill_doctor.postmortem.skipped import Skipped

# Keys that say something about the run's health (a record with only these is "data").
_FACT_KEYS = frozenset(
    {
        R.STEP,
        R.MICRO_STEP,
        R.EPOCH,
        R.PLANNED_STEPS,
        R.SCHEDULER_STEPS,
        R.VOCAB_SIZE,
        R.MEM_TOTAL,
        R.DEVICE,
    }
)


MAX_SHAPES = 4096
# Records judged together: the detectors take a batch per call, not a call per record;
# bounded, so memory stays flat.
BATCH = 1024


@dataclass
class Source:
    path: Path
    format: str
    skipped: Skipped
    records: int = 0  # metric records, as the run's `records` counts them
    logged_findings: int = 0  # findings the log itself holds (events.jsonl's pre-flight)


@dataclass
class Analysis:
    sources: list[Source]
    findings: list[Finding] = field(default_factory=list)  # detectors' and the logs' own
    records: int = 0
    metric_records: int = 0  # records with a metric, not only facts: zero means "no data"
    last_step: int | None = None
    # Facts the logs stated (a `[Scheduler] Optimizer steps:` line, trainer_state max_steps).
    logged_facts: dict[str, int] = field(default_factory=dict)
    curves: Curves = field(default_factory=Curves)
    facts: RunFacts | None = None
    # Detectors that raised (id -> what, where): switched off, reported as checks not run.
    crashed: dict[str, str] = field(default_factory=dict)
    # Record shape (its keys) -> [records of that shape, has a metric, its fact keys]: a log
    # repeats a handful of shapes, so a record costs a lookup, not a pass over its keys.
    shapes: dict[tuple[str, ...], list] = field(default_factory=dict)
    # Keys of records past MAX_SHAPES shapes (junk), counted one by one.
    other_keys: dict[str, int] = field(default_factory=dict)

    @property
    def series(self) -> dict[str, int]:
        """Points per series (key -> records that carry it): what the checks could judge."""
        counts = dict(self.other_keys)
        for shape, (count, _, _) in self.shapes.items():
            for key in shape:
                counts[key] = counts.get(key, 0) + count
        return counts

    def observe(self, record: dict[str, object], shape: tuple[str, ...] | None = None) -> None:
        self.observe_many([record], [(0, 1, shape or tuple(record))])

    def observe_many(
        self,
        records: list[dict[str, object]],
        runs: list[ShapeRun],
        columns: list[RunColumns] | None = None,
    ) -> None:
        """A batch of records (`runs`: its `shape_runs`; `columns`: their `RunColumns`, when
        the caller has them): counted per run of one shape."""
        columns = run_columns(records, runs, columns)
        self.records += len(records)
        last_step = self.last_step
        for (start, end, shape), values in zip(runs, columns, strict=True):
            info = self.shapes.get(shape) or self._new_shape(shape)
            info[0] += end - start
            if info[1]:
                self.metric_records += end - start
            steps = values.get(R.STEP) or ()
            if steps and not values.ints(R.STEP):
                steps = [step for step in steps if type(step) is int]
            if steps and (last_step is None or max(steps) > last_step):
                last_step = max(steps)
            for record in records[start:end] if info[2] else ():
                for key in info[2]:
                    value = record.get(key)
                    if isinstance(value, int):
                        self.logged_facts[key] = value
        self.last_step = last_step
        self.curves.add_many(records, runs, columns)

    def _new_shape(self, shape: tuple[str, ...]) -> list:
        info = [
            0,
            not _FACT_KEYS.issuperset(shape),
            tuple(k for k in (R.PLANNED_STEPS, R.SCHEDULER_STEPS) if k in shape),
        ]
        if len(self.shapes) < MAX_SHAPES:
            self.shapes[shape] = info
        else:
            for key in shape:
                self.other_keys[key] = self.other_keys.get(key, 0) + 1
        return info


def _counted(records: Iterator[dict[str, object]], source: Source) -> Iterator[dict[str, object]]:
    """The records, counted a batch at a time and flattened in C: a step of Python per record
    shows in a million."""

    def count(batch: list[dict[str, object]]) -> list[dict[str, object]]:
        logged = sum(map(contains, batch, repeat(FINDING_KEY)))
        source.logged_findings += logged
        source.records += len(batch) - logged
        return batch

    return chain.from_iterable(map(count, iter(lambda: list(islice(records, BATCH)), [])))


def open_sources(
    paths: list[Path], options: ParseOptions, format_in: str | None = None
) -> tuple[list[Source], Iterator[dict[str, object]]]:
    """Detect every file's format up front (so a bad file fails before any work), then one
    merged record stream."""
    files = [file for path in paths for file in expand(path)]
    parsers = [detect(file, format_in) for file in files]
    sources = [Source(f, p.NAME, Skipped(str(f))) for f, p in zip(files, parsers, strict=True)]
    streams = [
        _counted(parser.parse(source.path, source.skipped, options), source)
        for parser, source in zip(parsers, sources, strict=True)
    ]
    return sources, merge_by_step(streams)


def analyze(
    paths: list[Path],
    facts: RunFacts | None = None,
    options: ParseOptions | None = None,
    format_in: str | None = None,
) -> Analysis:
    sources, records = open_sources(paths, options or ParseOptions(), format_in)
    analysis = Analysis(sources, facts=facts)
    suite = DetectorSuite(facts)
    while batch := list(islice(records, BATCH)):
        shapes = list(map(tuple, batch))  # shared: both look their work up by the record's keys
        runs = shape_runs(shapes)
        logged: list[tuple[int, Finding]] = []
        if any(FINDING_KEY in shape for _, _, shape in runs):
            batch, logged = _take_logged(batch)
            runs = shape_runs(list(map(tuple, batch)))
        _analyze_batch(analysis, suite, batch, runs, logged)
    analysis.findings.extend(suite.finish())
    analysis.crashed = suite.crashed
    # One finding per (id, step), its latest statement: a log's own finding and the replayed
    # detector's agree, and an episode restated at its end carries its totals.
    analysis.findings = _one_story(latest_per_episode(analysis.findings))
    return analysis


def _take_logged(
    batch: list[dict[str, object]],
) -> tuple[list[dict[str, object]], list[tuple[int, Finding]]]:
    """The batch's metric records, and the logs' own findings, each with the index of the
    record it comes before."""
    kept: list[dict[str, object]] = []
    logged: list[tuple[int, Finding]] = []
    for record in batch:
        if FINDING_KEY in record:
            finding = record.pop(FINDING_KEY)
            if isinstance(finding, dict):
                logged.append((len(kept), Finding.from_dict(finding)))
                continue
        kept.append(record)
    return kept, logged


def _analyze_batch(
    analysis: Analysis,
    suite: DetectorSuite,
    batch: list[dict[str, object]],
    runs: list[ShapeRun],
    logged: list[tuple[int, Finding]],
) -> None:
    """Observe and judge a batch; findings in stream order (a log's own finding before the
    detectors' findings of the record after it)."""
    columns = run_columns(batch, runs)  # read once, by the counts, curves and detectors
    analysis.observe_many(batch, runs, columns)
    found = suite.update_many(batch, runs, columns)
    if logged:
        keyed = [(i, 0, f) for i, f in logged] + [(i, 1, f) for i, f in found]
        keyed.sort(key=_index_then_source)  # stable
        analysis.findings.extend(f for _, _, f in keyed)
    else:
        analysis.findings.extend(f for _, f in found)


def _index_then_source(item: tuple[int, int, Finding]) -> tuple[int, int]:
    return item[0], item[1]


def _one_story(findings: list[Finding]) -> list[Finding]:
    """An eval-loss rise inside an overfitting episode is that episode, not a second one."""
    episodes = [
        (f.evidence.get("best_step"), f.evidence.get("step"))
        for f in findings
        if f.id == "overfitting"
    ]

    def inside(finding: Finding) -> bool:
        step = finding.step
        return step is not None and any(
            isinstance(first, int) and isinstance(last, int) and first < step <= last
            for first, last in episodes
        )

    return [f for f in findings if not (f.id == "eval-regression" and inside(f))]
