"""Several files of one run merged into one stream in step order: a k-way merge that holds
one record per file, so memory does not grow with the logs."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from distill_doctor import records as R


def _step(record: dict[str, object]) -> int:
    step = record.get(R.STEP)
    return step if isinstance(step, int) else 0


def merge_by_step(streams: Iterable[Iterator[dict[str, object]]]) -> Iterator[dict[str, object]]:
    """Records of all streams by step; a tie keeps the order of the streams as given. Each
    stream should already be in step order (a log is written so)."""
    return heapq.merge(*streams, key=_step)
