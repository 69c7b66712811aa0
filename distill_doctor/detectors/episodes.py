"""`Episodes`: a detector's hits grouped into episodes, so that a run that misbehaves for a
while gives one finding (first step, last step, count, worst value), not one per step.

A detector reports an episode when it begins (the live watchdog must hear of it at once) and
restates it with its final numbers when it ends or in `finish()`: the same id and step, so a
consumer that keeps one finding per (id, step) keeps the last (`latest_per_episode`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from distill_doctor.detectors.values import plain
from distill_doctor.findings import Finding


@dataclass
class Episode:
    finding: Finding  # as first reported
    first_step: int | None
    last_step: int | None
    count: int
    worst: float

    def restated(self) -> Finding:
        """The first report with the episode's final numbers; unchanged for a single hit."""
        if self.count == 1:
            return self.finding
        until = f" up to step {self.last_step}" if self.last_step is not None else ""
        worst = "" if math.isnan(self.worst) else f", worst {self.worst:.4g}"
        return replace(
            self.finding,
            message=f"{self.finding.message} Seen {self.count} times{until}{worst}.",
            evidence={
                **self.finding.evidence,
                "first_step": self.first_step,
                "last_step": self.last_step,
                "count": self.count,
                "worst": plain(self.worst),
            },
        )


class Episodes:
    """Hits less than `gap` records apart belong to one episode; `worse(a, b)` is True when a
    is worse than b (a larger value, by default)."""

    def __init__(self, gap: int, higher_is_worse: bool = True) -> None:
        self.gap = gap
        self.sign = 1.0 if higher_is_worse else -1.0
        self.open: Episode | None = None
        self.quiet_records = 0

    def hit(self, step: int | None, value: float) -> Episode | None:
        """A bad record. Returns the open episode when this hit continues it (the caller stays
        silent), None when a new one must be reported (then call `start`)."""
        self.quiet_records = 0
        if self.open is None:
            return None
        episode = self.open
        episode.count += 1
        episode.last_step = step if step is not None else episode.last_step
        if self.sign * value > self.sign * episode.worst or math.isnan(value):
            episode.worst = value
        return episode

    def start(self, finding: Finding, step: int | None, value: float) -> Finding:
        self.open = Episode(finding, step, step, 1, value)
        self.quiet_records = 0
        return finding

    def quiet(self) -> list[Finding]:
        """A record without a hit: closes the open episode after `gap` of them."""
        if self.open is None:
            return []
        self.quiet_records += 1
        return self.close() if self.quiet_records >= self.gap else []

    def close(self) -> list[Finding]:
        """The open episode's restatement (when it had more than one hit), and forget it."""
        episode, self.open = self.open, None
        if episode is None or episode.count == 1:
            return []
        return [episode.restated()]


def latest_per_episode(findings: list[Finding]) -> list[Finding]:
    """One finding per (id, step), the latest statement of it, at the place of the first."""
    index: dict[tuple[str, int | None], int] = {}
    kept: list[Finding] = []
    for finding in findings:
        key = (finding.id, finding.step)
        if key in index:
            kept[index[key]] = finding
        else:
            index[key] = len(kept)
            kept.append(finding)
    return kept
