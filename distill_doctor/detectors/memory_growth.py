"""`memory-growth`: memory rising step after step: a leak (tensors kept alive across steps,
a loss summed with its graph, a growing cache), not the plateau a healthy run reaches.

Reads the most precise memory series the stream has: torch's allocated bytes on a GPU, else
the process RSS (a CPU run), else device memory in use.
"""

from __future__ import annotations

from collections import deque

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.values import emit, finite, step_of
from distill_doctor.findings import Finding, Severity
from distill_doctor.records import MEM_ALLOCATED, MEM_RSS, MEM_TOTAL, MEM_USED, Record
from distill_doctor.registry import RuleDoc, register

SERIES = (MEM_ALLOCATED, MEM_RSS, MEM_USED)
# The first records allocate the optimizer state, caches and workspaces: not a leak.
SKIP_RECORDS = 5
WINDOW = 12
# A leak never gives memory back: it holds or grows at (nearly) every step (RSS grows in the
# allocator's chunks, a staircase); allocator noise goes both ways.
RISING_SHARE = 0.8
# Growth over the window that counts: enough to matter, and a share of what is in use.
MIN_GROWTH_BYTES = 64 * 2**20
MIN_GROWTH_SHARE = 0.05
# Spread over the steps, not one jump: an eval's buffers or a cache filled once are not a leak.
MAX_ONE_STEP_SHARE = 0.5

DOC = register(
    RuleDoc(
        id="memory-growth",
        code="DD231",
        kind="stream",
        severity=Severity.ERROR,
        summary="Memory grows step after step (a leak), not the plateau of a healthy run.",
        why="A run whose memory rises every step will run out of memory hours in, usually at "
        "the worst moment. The usual causes: a loss or logits kept with their graph "
        "(`total += loss` instead of `loss.item()`), a list of outputs kept for later, a cache "
        "keyed by step.",
        fix="Log `loss.item()` (a number), not the tensor; detach what you keep; clear lists "
        "of outputs each step. torch.cuda.memory_summary() shows what grows.",
        example="mem_allocated_bytes never fell in 11 of 11 steps: +1,434 MiB over steps 6..17",
    )
)


class MemoryGrowth:
    DOC = DOC
    WATCHES = (*SERIES, MEM_TOTAL)

    def __init__(self, facts: RunFacts | None = None) -> None:
        self.key: str | None = None
        self.seen = 0
        self.window: deque[tuple[int, float]] = deque(maxlen=WINDOW)
        self.total = float(facts.mem_total_bytes) if facts and facts.mem_total_bytes else None
        self.reported = False

    def update(self, record: Record) -> list[Finding]:
        if self.reported:
            return []
        if self.key is None:
            self.key = next((k for k in SERIES if finite(record, k) is not None), None)
            if self.key is None:
                return []
        value, step = finite(record, self.key), step_of(record)
        if value is None or step is None:
            return []
        total = finite(record, MEM_TOTAL)
        if total:
            self.total = total
        self.seen += 1
        if self.seen <= SKIP_RECORDS:
            return []
        self.window.append((step, value))
        if len(self.window) < WINDOW:
            return []
        values = [v for _, v in self.window]
        rises = sum(b >= a for a, b in zip(values, values[1:], strict=False))
        growth = values[-1] - values[0]
        if rises < RISING_SHARE * (WINDOW - 1) or growth < max(
            MIN_GROWTH_BYTES, MIN_GROWTH_SHARE * values[0]
        ):
            return []
        if (
            max(b - a for a, b in zip(values, values[1:], strict=False))
            > MAX_ONE_STEP_SHARE * growth
        ):
            return []
        self.reported = True
        first, last = self.window[0][0], self.window[-1][0]
        per_step = growth / max(last - first, 1)
        evidence = {
            "series": self.key,
            "first_step": first,
            "last_step": last,
            "growth_bytes": int(growth),
            "bytes_per_step": int(per_step),
            "rising_steps": rises,
        }
        full = ""
        if self.total and self.key != MEM_RSS and per_step > 0:
            full_at = last + int((self.total - values[-1]) / per_step)
            evidence["full_at_step"] = full_at
            full = f"; at this rate memory is full near step {full_at:,}"
        return [
            emit(
                DOC,
                first,
                f"{self.key} never fell in {rises} of {WINDOW - 1} steps: "
                f"+{growth / 2**20:,.0f} MiB over steps {first}..{last} "
                f"({per_step / 2**20:,.1f} MiB/step){full}.",
                evidence,
            )
        ]

    def finish(self) -> list[Finding]:
        return []
