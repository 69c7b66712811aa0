"""Shared by the loop/CLI/data tests: a small word corpus and a config over the tiny pair."""

from __future__ import annotations

import random
from pathlib import Path

import torch
from conftest import WORDS

from distill_doctor.config.schema import TrainConfig

# The test models are tiny: one thread is faster, and on a busy 2-core machine two threads
# spin-waiting for each other made a 6-step run take 21 s instead of 1.3 s.
torch.set_num_threads(1)


def write_corpus(path: Path, documents: int = 120, seed: int = 0) -> Path:
    """Blank-line-separated documents of 3..30 random words (varied lengths, so padding and
    the valid-token count differ between micro-batches)."""
    rng = random.Random(seed)
    docs = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) for _ in range(documents)
    ]
    path.write_text("\n\n".join(docs), encoding="utf-8")
    return path


def tiny_config(pair, data: Path, **overrides) -> TrainConfig:
    values = dict(
        teacher_model=str(pair.teacher),
        student_model=str(pair.student),
        data=str(data),
        max_length=16,
        batch_size=4,
        learning_rate=1e-3,
        eval_steps=1000,
        eval_max_batches=2,
        logging_steps=1,
        seed=0,
    )
    return TrainConfig(**{**values, **overrides})
