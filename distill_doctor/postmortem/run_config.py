"""`--config`: what the training config says about the run (planned optimizer steps, the steps
the scheduler was told, the accumulation), for the detectors and the diagnosis chains."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from distill_doctor.detectors import RunFacts


class RunConfig(NamedTuple):  # a NamedTuple, not a frozen dataclass: see rules.base
    path: Path
    planned_steps: int | None  # optimizer steps the run really takes
    scheduler_steps: int | None  # total steps the LR scheduler was told
    accumulation: int
    vocab_size: int | None
    loss_is_combined: bool  # the config weights KD/feature/attention terms into `loss`


def run_facts(config: RunConfig | None, vocab_size: int | None = None) -> RunFacts | None:
    """What the detectors know before the stream: the config's plan, a vocabulary size given
    on the command line (a log rarely states it; loss-above-chance needs it)."""
    if config is None and vocab_size is None:
        return None
    return RunFacts(
        planned_steps=config.planned_steps if config else None,
        vocab_size=vocab_size or (config.vocab_size if config else None),
        loss_is_combined=bool(config and config.loss_is_combined),
    )


def load_run_config(path: Path) -> RunConfig:
    """The config in any dialect `doctor check` reads (native or HF TrainingArguments), with
    the models' vocabulary from their config.json or the built-in table."""
    # Imported here: a postmortem without --config needs no config schema (pydantic).
    from distill_doctor.config.context import load_context
    from distill_doctor.rules.kd_scope import kd_in_play

    ctx, _ = load_context(path)
    cfg = ctx.config
    extra_terms = ctx.dialect == "native" and cfg.feature_weight + cfg.attention_weight > 0
    return RunConfig(
        path=path,
        planned_steps=ctx.planned_steps,
        scheduler_steps=ctx.scheduler_steps,
        accumulation=ctx.config.gradient_accumulation_steps,
        vocab_size=ctx.vocab_size,
        loss_is_combined=kd_in_play(ctx) or extra_terms,
    )
