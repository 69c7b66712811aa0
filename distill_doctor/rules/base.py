"""What a config rule sees: `CheckContext`, one validated config plus the facts around it.

A rule is a module with `DOC: RuleDoc` and `check(ctx: CheckContext) -> list[Finding]`.
Rules never read files or the network: the loader resolves model facts and the GPU first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from distill_doctor.config.schema import TrainConfig
from distill_doctor.config.steps import optimizer_steps

Dialect = Literal["native", "hf"]


@dataclass(frozen=True)
class ModelFacts:
    """Architecture numbers of one model, and where they came from."""

    name: str
    vocab_size: int
    max_positions: int
    num_layers: int
    hidden_size: int
    num_heads: int
    num_params: int  # parameters, for memory estimates
    intermediate_size: int | None = None
    source: str = "built-in table"  # or the path of the config.json they were read from


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gb: float
    bf16_native: bool  # Ampere (sm80) and newer
    fp16_tensor_cores: bool  # Volta (sm70) and newer; P100 has fast fp16 but no tensor cores


@dataclass(frozen=True)
class CheckContext:
    config: TrainConfig
    dialect: Dialect = "native"
    # Canonical keys the file really set: rules about a key the user never wrote (e.g. KD keys
    # in a plain Hugging Face TrainingArguments file) stay silent.
    given: frozenset[str] = field(default_factory=frozenset)
    teacher: ModelFacts | None = None
    student: ModelFacts | None = None
    gpu: GpuSpec | None = None

    def is_given(self, key: str) -> bool:
        return key in self.given

    @property
    def planned_steps(self) -> int | None:
        """Optimizer steps the trainer really runs; None when the dataset size is unknown."""
        cfg = self.config
        if cfg.train_samples is None:
            return cfg.max_steps
        return optimizer_steps(
            cfg.train_samples,
            cfg.batch_size,
            cfg.gradient_accumulation_steps,
            cfg.epochs,
            cfg.max_steps,
        )

    @property
    def scheduler_steps(self) -> int | None:
        """The total steps the LR scheduler is told (computed right when not overridden)."""
        return self.config.num_training_steps or self.planned_steps

    @property
    def vocab_size(self) -> int | None:
        if self.config.vocab_size is not None:
            return self.config.vocab_size
        for facts in (self.student, self.teacher):
            if facts is not None:
                return facts.vocab_size
        return None
