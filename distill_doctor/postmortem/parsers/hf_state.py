"""Hugging Face `trainer_state.json`: `log_history` entries become records; `max_steps` is
the run's planned optimizer steps. The file is one JSON document written by the Trainer at
each save, so it is read whole (it holds one small dict per log, bounded by MAX_BYTES)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from distill_doctor import records as R
from distill_doctor.postmortem.keys import map_metrics
from distill_doctor.postmortem.parsers import ParseOptions
from distill_doctor.postmortem.skipped import Skipped

NAME = "hf-trainer-state"
DESCRIPTION = "Hugging Face trainer_state.json (log_history)"
MAX_BYTES = 512 * 1024 * 1024


def sniff(head: bytes, path: Path) -> bool:
    if path.name == "trainer_state.json":
        return True
    return head.lstrip().startswith(b"{") and b'"log_history"' in head


def _load(path: Path, skipped: Skipped) -> dict[str, object] | None:
    size = path.stat().st_size
    if size > MAX_BYTES:
        skipped.skip("trainer_state.json over 512 MiB", size)
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        state = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        skipped.skip("not valid JSON (cut off?)", size, lines=text.count("\n") + 1)
        return None
    return state if isinstance(state, dict) else None


def parse(path: Path, skipped: Skipped, options: ParseOptions) -> Iterator[dict[str, object]]:
    state = _load(path, skipped)
    if state is None:
        return
    max_steps = state.get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        yield {R.STEP: 0, R.PLANNED_STEPS: max_steps}
    history = state.get("log_history")
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict) or "train_runtime" in entry:
            continue  # the summary entry repeats an average over the run
        step = entry.get("step")
        record: dict[str, object] = {}
        if not isinstance(step, int) or not map_metrics(entry, record):
            skipped.skip("log_history entry without a step or metric", len(str(entry)))
            continue
        record[R.STEP] = step
        yield record
