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
    stream should already be in step order (a log is written so). One stream is passed
    through as it is: nothing to merge, and no per-record cost."""
    streams = list(streams)
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_step)
