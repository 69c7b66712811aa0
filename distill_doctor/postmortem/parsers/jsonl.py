"""Generic JSON-lines metric logs: one object per line with a step-like key (`step`,
`global_step`, `iteration`, `_step`...) and metric keys (`loss`, `lr`, `eval/loss`...).
A line without a step takes the previous step + 1.

Logs repeat one set of names on every line, so what each name means (its record key, or that
it is the step) is worked out once per set of names and reused. Lines are decoded a block at
a time (`json_blocks`), and a run of lines with the same names becomes records in one C loop
over a function written for their layout: a few C calls and one small function per line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from itertools import chain, groupby

from distill_doctor import records as R
from distill_doctor.postmortem import json_blocks
from distill_doctor.postmortem.inputs import LogInput
from distill_doctor.postmortem.keys import (
    MAX_EXACT_INT,
    STEP_NAMES,
    map_metrics,
    normalise,
    to_number,
    to_step,
)
from distill_doctor.postmortem.lines import block_lines, iter_line_blocks
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "jsonl"
DESCRIPTION = 'JSON-lines metric logs ({"step": 10, "loss": 2.3, ...} per line)'
NOT_JSON = "not a JSON object (cut off?)"
NO_METRIC = "no metric in the object"
MAX_LAYOUTS = 1024  # distinct sets of names remembered; a log has a handful
# Wider layouts take the general path: a builder's source is compiled once per width.
MAX_BUILDER_WIDTH = 64


def sniff(head: bytes, path: object) -> bool:
    first = head.lstrip().split(b"\n", 1)[0]
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and map_metrics(obj, {}) > 0


Layout = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]
# A layout's record builder: (object, the step if it states none) -> the record, or None when
# a value is not plain (see `_builder`).
Build = Callable[[dict[str, object], int], "dict[str, object] | None"]


def _layout(names: tuple[str, ...], options: ParseOptions) -> Layout:
    """(name, record key) of the metrics, and the names that may hold the step."""
    metrics = tuple((n, k) for n in names if (k := options.key(n)) is not None)
    steps = tuple(n for n in names if normalise(n) in STEP_NAMES)
    return metrics, steps


def _builder(layout: Layout) -> Build | None:
    """The record of an object of this layout whose metrics are floats or exact ints and whose
    step, if it names one, is a plain int: the line of nearly every log, built by a function
    written for the layout's width, a dict display (no loop, no call per value). It gives the
    record the general path gives (keys in the same order); any other value (a string, a
    bool, a huge int) is left to that path."""
    metrics, steps = layout
    if not metrics or len(steps) > 1 or len(metrics) > MAX_BUILDER_WIDTH:
        return None
    names = [name for name, _ in metrics]
    keys = [key for _, key in metrics]
    if steps:
        return _builder_factory(len(metrics), True)(*names, *keys, steps[0])
    return _builder_factory(len(metrics), False)(*names, *keys)


@functools.cache
def _builder_factory(width: int, states_step: bool) -> Callable[..., Build]:
    """A factory of builders for layouts of `width` metrics, compiled once per width: its
    source holds generated identifiers only (the log's names and keys come in as arguments),
    so nothing a log holds is compiled."""
    names = [f"n{i}" for i in range(width)]
    keys = [f"k{i}" for i in range(width)]
    taken = "".join(f"        v{i} = obj[n{i}]\n" for i in range(width))
    plain = " and ".join(
        f"(type(v{i}) is float or type(v{i}) is int and -MAX_EXACT_INT <= v{i} <= MAX_EXACT_INT)"
        for i in range(width)
    )
    items = ", ".join(f"k{i}: v{i}" for i in range(width))
    if states_step:
        params = [*names, *keys, "step_name"]
        taken += "        step = obj[step_name]\n"
        plain += " and type(step) is int and 0 <= step <= MAX_EXACT_INT"
    else:
        params = [*names, *keys]
        taken += "        step = following\n"
    source = (
        f"def factory({', '.join(params)}):\n"
        "    def build(obj, following):\n"
        f"{taken}"
        f"        if {plain}:\n"
        f"            return {{{items}, STEP: step}}\n"
        "        return None\n"
        "    return build\n"
    )
    namespace = {"STEP": R.STEP, "MAX_EXACT_INT": MAX_EXACT_INT}
    exec(source, namespace)  # noqa: S102 - generated identifiers only, see above
    return namespace["factory"]


class Layouts:
    """What each set of names means, worked out once per set: a log repeats a few sets."""

    def __init__(self, options: ParseOptions) -> None:
        self.options = options
        self.known: dict[tuple[str, ...], tuple[Layout, Build | None]] = {}
        self.seen_once: set[tuple[str, ...]] = set()

    def _of(self, names: tuple[str, ...], objects: int = 1) -> tuple[Layout, Build | None]:
        """The layout of a set of names, and its builder once more than one object has had
        these names: a log of ever new names never pays for one."""
        found = self.known.get(names)
        if found is None:
            if len(self.known) >= MAX_LAYOUTS:
                self.known.clear()
                self.seen_once.clear()
            layout = _layout(names, self.options)
            found = self.known[names] = (layout, _builder(layout) if objects > 1 else None)
            if objects == 1:
                self.seen_once.add(names)
        elif names in self.seen_once:
            self.seen_once.discard(names)
            found = self.known[names] = (found[0], _builder(found[0]))
        return found

    def metrics(self, obj: dict[str, object]) -> tuple[dict[str, object], int | None]:
        """(the record's metrics, the step the object states or None)."""
        return self._metrics(obj, self._of(tuple(obj))[0])

    def record(self, obj: dict[str, object], previous: int) -> dict[str, object] | None:
        """The record of an object, with its step (the one it states, else `previous` + 1);
        None when it holds no metric."""
        return self._record(obj, self._of(tuple(obj)), previous)

    def records(
        self, objects: list[dict[str, object]], previous: int
    ) -> tuple[list[dict[str, object]], list[int]]:
        """The records of objects, each as `record` gives it, and the indices of the objects
        without a metric. A run of objects with the same names is built in one C loop."""
        records: list[dict[str, object]] = []
        unused: list[int] = []
        start = 0
        for names, same in groupby(map(tuple, objects)):
            end = start + len(list(same))
            known = self._of(names, end - start)
            built = None
            if known[1] is not None and end - start > 1:  # one object: no loop to set up
                steps = range(previous + 1, previous + 1 + end - start)
                built = list(map(known[1], objects[start:end], steps))
            if built is None or None in built:
                for index in range(start, end):
                    record = self._record(objects[index], known, previous)
                    if record is None:
                        unused.append(index)
                        continue
                    previous = record[R.STEP]  # type: ignore[assignment]
                    records.append(record)
            else:
                records += built
                previous = built[-1][R.STEP]  # type: ignore[assignment]
            start = end
        return records, unused

    def _record(
        self, obj: dict[str, object], known: tuple[Layout, Build | None], previous: int
    ) -> dict[str, object] | None:
        layout, build = known
        if build is not None and (record := build(obj, previous + 1)) is not None:
            return record
        record, found = self._metrics(obj, layout)
        if not record:
            return None
        record[R.STEP] = found if found is not None else previous + 1
        return record

    @staticmethod
    def _metrics(obj: dict[str, object], layout: Layout) -> tuple[dict[str, object], int | None]:
        metric_names, step_names = layout
        record: dict[str, object] = {}
        for name, key in metric_names:
            value = obj[name]
            if type(value) is float:  # the common case, without a call
                record[key] = value
            elif (number := to_number(value)) is not None:
                record[key] = number
        for name in step_names:
            value = obj[name]
            step = value if type(value) is int and 0 <= value <= MAX_EXACT_INT else to_step(value)
            if step is not None:
                return record, step
        return record, None


def load_line(line: bytes | str) -> object:
    """One JSON line; bytes that are not UTF-8 are replaced rather than refused."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    return json_blocks.decode_text(line)


def parse(path: LogInput, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    # Flattened in C: a generator step per record would show in a million.
    return chain.from_iterable(_block_records(path, skipped, options))


def _block_records(
    path: LogInput, skipped: Skipped, options: ParseOptions
) -> Iterator[list[dict[str, object]]]:
    """The records of the file a block at a time."""
    layouts = Layouts(options)
    step = -1
    for block in iter_line_blocks(path, skipped):
        objects = json_blocks.block_objects(block)
        if objects is None:
            records = _line_by_line(block, layouts, step, skipped)
        else:
            records, unused = layouts.records(objects, step)
            if unused:
                texts = block_lines(block)
                for index in unused:
                    skipped.skip(NO_METRIC, len(texts[index]))
        if records:
            step = records[-1][R.STEP]  # type: ignore[assignment]
            yield records


def _line_by_line(
    block: bytes, layouts: Layouts, step: int, skipped: Skipped
) -> list[dict[str, object]]:
    """The records of a block that orjson could not read whole (a NaN, a cut line...), its
    skips counted in the lines' order."""
    records = []
    for text in block_lines(block):
        obj = json_blocks.text_value(text)
        if type(obj) is dict and (record := layouts.record(obj, step)) is not None:
            step = record[R.STEP]  # type: ignore[assignment]
            records.append(record)
        elif obj is not json_blocks.BLANK:
            skipped.skip(NOT_JSON if obj is json_blocks.NOT_JSON else NO_METRIC, len(text))
    return records
