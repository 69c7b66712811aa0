"""events.jsonl: a run's own log, written by the trainer/watchdog and read by the postmortem.

One JSON object per line, each with a `type`:
    {"type": "run", "config": {...}, "planned_steps": N, "versions": {...}, "device": "..."}
    {"type": "metrics", "step": N, ...Record keys...}
    {"type": "eval", "step": N, "eval_loss": ..., ...}
    {"type": "finding", ...Finding.to_dict()...}
    {"type": "action", "action": "abort|adjust|skip", "finding": id, "before": {}, "after": {}}
Lines are appended and flushed one at a time, so a killed run leaves a readable log. NaN and
Infinity are written as JSON's common extensions (NaN, Infinity), which Python reads back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

EVENT_TYPES = ("run", "metrics", "eval", "finding", "action")


def _plain(value: Any) -> Any:
    """JSON-safe copy: tuples to lists, numpy/torch scalars to Python numbers, else str()."""
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _plain(item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


class EventLog:
    """Append-only events.jsonl writer; every line is flushed (and fsynced on close)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, event_type: str, **fields: Any) -> None:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        if self._file is None:
            raise ValueError("event log is closed")
        line = json.dumps({"type": event_type, **_plain(fields)}, allow_nan=True)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
