"""What a parser could not use: lines and bytes skipped, by reason, so the report can say so."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Skipped:
    """Counts for one source file. Reasons are short phrases ("line over 1 MiB")."""

    source: str
    lines: int = 0
    bytes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, nbytes: int, lines: int = 1) -> None:
        self.lines += lines
        self.bytes += nbytes
        self.reasons[reason] += lines

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "lines": self.lines,
            "bytes": self.bytes,
            "reasons": dict(self.reasons.most_common()),
        }
