"""`RollingWindow`: the last N values with cheap order statistics.

Detectors ask for a median or a quantile at every record, so the window keeps a sorted copy
beside the arrival order: an insert and a removal are a bisect plus a short memmove, far
cheaper than sorting or calling numpy per record.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence

# IQR / 1.349 estimates the standard deviation of normal noise, robust to the outliers we hunt.
IQR_TO_SIGMA = 1.349
# Above this, halving a float is exact, so `median_of_sorted` lies between its two middle
# values: bounds on those bound the median (batch paths decide blocks of records by them).
EXACT_HALVES = 1e-300


def median_of_sorted(ordered: list[float]) -> float:
    n = len(ordered)
    mid = n >> 1
    return ordered[mid] if n & 1 else ordered[mid - 1] * 0.5 + ordered[mid] * 0.5


class RollingWindow:
    """`order` (arrival) and `ordered` (sorted) are public for the detectors' batch loops
    (`update_many`), which add values inline: a method call per value costs more than the add."""

    __slots__ = ("order", "ordered", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.order: deque[float] = deque()
        self.ordered: list[float] = []

    def __len__(self) -> int:
        return len(self.order)

    def add(self, value: float) -> None:
        if len(self.order) == self.size:
            oldest = self.order.popleft()
            del self.ordered[bisect_left(self.ordered, oldest)]
        self.order.append(value)
        insort(self.ordered, value)

    def extend(self, values: Sequence[float]) -> None:
        """Finite values in order, leaving the window as that many `add`s would; the sorted
        copy is rebuilt in C (a run of a thousand values costs one sort of the window). The
        same lists unless a 0.0 and a -0.0 meet (equal, yet printed apart): then one by one."""
        if 0.0 in values or 0.0 in self.ordered:
            for value in values:
                self.add(value)
            return
        order = self.order
        if len(values) >= self.size:
            order.clear()
            order.extend(values[-self.size :])
        else:
            order.extend(values)
            for _ in range(len(order) - self.size):
                order.popleft()
        self.ordered[:] = sorted(order)  # in place: batch loops hold the list

    def quantile(self, q: float) -> float:
        """Nearest-rank quantile with linear interpolation; the window must not be empty."""
        position = q * (len(self.ordered) - 1)
        low = int(position)
        high = min(low + 1, len(self.ordered) - 1)
        weight = position - low
        return self.ordered[low] * (1 - weight) + self.ordered[high] * weight

    def lowest(self) -> float:
        return self.ordered[0]

    def highest(self) -> float:
        return self.ordered[-1]

    def median(self) -> float:
        return median_of_sorted(self.ordered)

    def robust_sigma(self) -> float:
        """Spread of the window's noise (IQR-based), ignoring the outliers it may hold."""
        return (self.quantile(0.75) - self.quantile(0.25)) / IQR_TO_SIGMA

    def log_robust_sigma(self) -> float | None:
        """The robust spread of ln(value): the noise of a positive, multiplicative quantity
        (a loss, a gradient norm) whose batches differ by factors; None unless all > 0."""
        low, high = self.quantile(0.25), self.quantile(0.75)
        if self.ordered[0] <= 0 or low <= 0:
            return None
        return (math.log(high) - math.log(low)) / IQR_TO_SIGMA

    def values(self) -> list[float]:
        """The values in arrival order (a copy)."""
        return list(self.order)
