"""Faults `doctor train --inject NAME` plants on purpose, to show that the watchdog catches
each under its id (and to test that it does). Each fault acts at the start of an optimizer
step, on the last rank, so rank 0's view stays the healthy reference.

Importing this module loads no torch: the command checks the names before any model loads.
"""

from __future__ import annotations

import time
from typing import Any

from distill_doctor.errors import InputError

# name -> what it does (and which detector catches it)
FAULTS: dict[str, str] = {
    "rank-desync": "adds 0.01 to one student weight on the last rank after step 1: the ranks' "
    "weights differ from then on (caught as rank-desync)",
    "straggler": "sleeps 0.25 s per optimizer step on the last rank (caught as straggler-rank)",
}
NEEDS_RANKS = {"rank-desync", "straggler"}  # meaningless in a single process
DESYNC_DELTA = 0.01
STRAGGLER_SLEEP_S = 0.25  # several times a tiny test model's step; a blip on a real one


def check_faults(names: list[str], world_size: int) -> None:
    """An InputError for an unknown name, or a multi-rank fault in a single process."""
    for name in names:
        if name not in FAULTS:
            known = ", ".join(sorted(FAULTS))
            raise InputError(f"--inject {name!r}: no such fault; known faults: {known}.")
        if name in NEEDS_RANKS and world_size < 2:
            raise InputError(
                f"--inject {name} needs several ranks: launch with `torchrun --nproc-per-node "
                "2 -m distill_doctor train ...`."
            )


class Faults:
    """The faults of one rank's run; `before_step` is called as each optimizer step starts."""

    def __init__(self, names: tuple[str, ...] = (), rank: int = 0, world_size: int = 1) -> None:
        self.names = set(names) if rank == world_size - 1 else set()

    def before_step(self, student: Any, steps_done: int) -> None:
        if "straggler" in self.names:
            time.sleep(STRAGGLER_SLEEP_S)
        if "rank-desync" in self.names and steps_done == 1:
            import torch

            with torch.no_grad():  # DDP syncs gradients, never weights: the offset stays
                next(student.parameters()).view(-1)[0] += DESYNC_DELTA
