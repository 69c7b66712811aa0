"""`Streak`: a condition that must hold for several records in a row before it counts, and is
reported once per episode: a blip is ignored, a sustained problem gives one finding.
"""

from __future__ import annotations


class Streak:
    def __init__(self, confirm: int) -> None:
        self.confirm = confirm
        self.first_step: int | None = None  # where the current episode began
        self.length = 0

    def observe(self, bad: bool, step: int | None) -> bool:
        """Feed one record's verdict; True exactly once, when an episode reaches `confirm`."""
        if not bad:
            self.first_step, self.length = None, 0
            return False
        if self.length == 0:
            self.first_step = step
        self.length += 1
        return self.length == self.confirm
