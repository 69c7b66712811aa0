"""`--config`: what the training config says about the run (planned optimizer steps, the steps
the scheduler was told, the accumulation), for the detectors and the diagnosis chains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distill_doctor.config.loader import load_native
from distill_doctor.detectors import RunFacts
from distill_doctor.rules.base import CheckContext


@dataclass(frozen=True)
class RunConfig:
    path: Path
    planned_steps: int | None  # optimizer steps the run really takes
    scheduler_steps: int | None  # total steps the LR scheduler was told
    accumulation: int
    vocab_size: int | None

    def facts(self) -> RunFacts:
        return RunFacts(planned_steps=self.planned_steps, vocab_size=self.vocab_size)


def load_run_config(path: Path) -> RunConfig:
    ctx = CheckContext(config=load_native(path))
    return RunConfig(
        path=path,
        planned_steps=ctx.planned_steps,
        scheduler_steps=ctx.scheduler_steps,
        accumulation=ctx.config.gradient_accumulation_steps,
        vocab_size=ctx.vocab_size,
    )
