"""What a config rule sees: `CheckContext`, one validated config plus the facts around it.

A rule is a module with `DOC: RuleDoc` and `check(ctx: CheckContext) -> list[Finding]`.
Rules never read files or the network: the loader resolves model facts and the GPU first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from distill_doctor.config.schema import TrainConfig
from distill_doctor.config.steps import optimizer_steps

Dialect = Literal[
    "native",
    "hf",
    "trl",
    "torchtune",
    "llamafactory",
    "axolotl",
    "distillkit",
    "accelerate",
    "deepspeed",
    "wandb",
]
TeacherSignal = Literal["online", "top_k", "offline"]


@dataclass(frozen=True)
class RunFacts:
    """What a framework's config says beyond `TrainConfig`'s keys; None: the file does not say.

    They change what the rules mean: the processes divide an epoch's steps, an adapter and
    4-bit weights change the memory and the normal LR, a teacher signal read from disk or as
    top-k log-probabilities is no full-vocabulary logits tensor, and a sampling temperature
    (TRL's GKD/GRPO `temperature`) is not a KD temperature.
    """

    processes: int | None = None  # data-parallel processes (accelerate, torchrun, world size)
    adapter: str | None = None  # "lora", "qlora", "dora"...: only the adapter trains
    adapter_rank: int | None = None
    adapter_targets: str | None = None  # the modules the adapter wraps, as the file says
    weight_bits: int | None = None  # 4 or 8: the frozen base weights are quantized
    teacher_signal: TeacherSignal = "online"
    sampling_temperature: float | None = None
    max_train_samples: int | None = None  # an upper bound on the dataset (max_samples)
    warmup_ratio: float | None = None  # warmup given as a share of the optimizer steps
    warmup_steps_fraction: float | None = None  # a warmup_steps below 1 (transformers 5 only)
    activation_checkpointing: bool = False  # layers' activations recomputed in the backward
    memory_efficient_attention: bool = False  # flash / SDPA: no s x s attention scores kept
    rope_scaling: str | None = None  # the file scales the model's positions (yarn, linear...)


# The records below are NamedTuples, immutable as frozen dataclasses are: creating a frozen
# dataclass costs ~1.5 ms of every `doctor check` start (it compiles six methods), a NamedTuple
# ~0.2 ms. RunFacts stays a dataclass: the dialects build it up with `dataclasses.replace`.
class ModelFacts(NamedTuple):
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
    dtype: str | None = None  # torch_dtype of a local config.json ("bfloat16"...); None: table


class GpuSpec(NamedTuple):
    """One GPU's memory and what its architecture runs natively."""

    name: str
    memory_gb: float
    bf16_native: bool  # Ampere (sm80) and newer
    fp16_tensor_cores: bool  # Volta (sm70) and newer; P100 has fast fp16 but no tensor cores


class CheckContext(NamedTuple):
    """One validated config and the facts around it: what every rule reads."""

    config: TrainConfig
    dialect: Dialect = "native"
    # Canonical keys the file really set: rules about a key the user never wrote (e.g. KD keys
    # in a plain Hugging Face TrainingArguments file) stay silent.
    given: frozenset[str] = frozenset()
    teacher: ModelFacts | None = None
    student: ModelFacts | None = None
    gpu: GpuSpec | None = None
    run: RunFacts = RunFacts()  # immutable: one shared default is safe

    def is_given(self, key: str) -> bool:
        return key in self.given

    def named_models(self) -> list[tuple[str, str, ModelFacts | None]]:
        """(role, name, facts or None) of the models the config names: a native config
        always names both; another dialect only those it sets."""
        named = []
        for role, facts in (("teacher", self.teacher), ("student", self.student)):
            key = f"{role}_model"
            if self.dialect == "native" or self.is_given(key):
                named.append((role, getattr(self.config, key), facts))
        return named

    @property
    def planned_steps(self) -> int | None:
        """Optimizer steps the trainer really runs; None when the dataset size is unknown."""
        return self.steps_for(self.config.train_samples)

    @property
    def most_steps(self) -> int | None:
        """An upper bound on the optimizer steps when only a cap on the dataset is known."""
        if self.planned_steps is not None or self.run.max_train_samples is None:
            return self.planned_steps
        return self.steps_for(self.run.max_train_samples)

    def steps_for(self, train_samples: int | None) -> int | None:
        """Optimizer steps for a dataset size; each of N processes sees 1/N of the samples."""
        cfg = self.config
        if train_samples is None:
            return cfg.max_steps
        per_process = math.ceil(train_samples / (self.run.processes or 1))
        return optimizer_steps(
            per_process,
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
