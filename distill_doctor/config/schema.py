"""`TrainConfig`: the bundled trainer's config, validated once at the edge.

A flat JSON object with the seed run's key names spelled exactly so (`batch_size`,
`gradient_accumulation_steps`, `epochs`, `train_samples`, `num_training_steps`, ...). Unknown
keys are errors (with a did-you-mean from the loader): a typo must never be silently ignored.
Each default carries a short reason.
"""

# No `from __future__ import annotations` here: pydantic would then eval each field's annotation
# from its string, ~2 ms of every `doctor check` start; evaluated with the class, they are free.
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

LayerPairs = list[tuple[int, int]]
# No run counts a trillion samples, steps or tokens: a bigger count is a typo or a hostile file,
# and refusing it keeps the step arithmetic in exact, printable numbers.
MAX_COUNT = 10**12
PositiveInt = Annotated[int, Field(gt=0, le=MAX_COUNT)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_COUNT)]
MAX_EPOCHS = 10_000  # `epochs: 1e300` would plan 10^302 steps
MAX_TEMPERATURE = 1_000.0  # past this softmax(z / T) is uniform to float precision
MAX_TOP_K = 10_000_000  # no tokenizer has ten million tokens
# fp32 elements per chunk buffer of the chunked KD/CE loss (~2 MiB): small enough that a
# chunk's handful of buffers stays in cache, large enough that per-chunk overhead is noise
# (benchmarks/kd_loss.py). Here, torch-free, because `doctor check`'s estimate counts it too.
KD_CHUNK_ELEMENTS = 1 << 19
# Logits elements per block of the fused lm_head loss (32 MiB fp32): a block's matmuls read all
# of the lm_head once, so blocks must be far taller than a chunk (trainer/kd_fused.py).
KD_FUSED_BLOCK_ELEMENTS = 1 << 23


class TrainConfig(BaseModel):
    # Infinity and NaN are no config values (`learning_rate: Infinity` is refused).
    # defer_build: the validator is built below, without pydantic plugins.
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, allow_inf_nan=False, defer_build=True
    )

    # --- models -----------------------------------------------------------------------------
    # A local folder with config.json (+ weights), a hub name (for users with a local hub
    # cache), or a bundled demo model ("demo:teacher", "demo:student").
    teacher_model: str = "demo:teacher"
    student_model: str = "demo:student"
    tokenizer: str | None = None  # None: the student's tokenizer
    vocab_size: PositiveInt | None = None  # None: read from the models

    # --- data -------------------------------------------------------------------------------
    data: str | None = None  # .txt, .jsonl with "text", or a saved `datasets` dir; None: demo
    eval_data: str | None = None  # None: hold out `eval_fraction` of `data`
    eval_fraction: float = Field(0.05, gt=0, lt=1)
    train_samples: PositiveInt | None = None  # examples in the training set (for `doctor check`)
    max_length: PositiveInt = 256
    pack: bool = True  # pack texts into full max_length blocks: no padding compute wasted

    # --- optimisation -----------------------------------------------------------------------
    batch_size: PositiveInt = 8
    gradient_accumulation_steps: PositiveInt = 1
    epochs: float = Field(1.0, gt=0, le=MAX_EPOCHS)
    max_steps: PositiveInt | None = None  # caps optimizer steps; the schedule is planned for it
    # The total steps the LR scheduler is told, as the seed's code called it. None: the trainer
    # computes the optimizer steps that will really run (the right answer).
    num_training_steps: PositiveInt | None = None
    learning_rate: float = Field(5e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: float = Field(0.0, ge=0, le=1)  # final LR as a share of the peak
    weight_decay: NonNegativeFloat = 0.01
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    adam_epsilon: float = Field(1e-8, gt=0)
    max_grad_norm: NonNegativeFloat | None = 1.0  # None or 0: no clipping
    fp16: bool = False
    bf16: bool = False
    seed: Annotated[int, Field(ge=-(2**63), lt=2**64)] = 0

    # --- distillation -----------------------------------------------------------------------
    temperature: float = Field(2.0, gt=0, le=MAX_TEMPERATURE)
    kd_loss: Literal["forward_kl", "reverse_kl", "jsd"] = "forward_kl"
    kd_scale_t2: bool = True  # multiply KD by T^2 as DistilBERT does (TRL and Liger do not)
    kd_top_k: Annotated[int, Field(gt=0, le=MAX_TOP_K)] | None = None  # None: full vocabulary
    kd_top_k_mode: Literal["renormalize", "tail"] = "tail"
    kd_jsd_beta: float = Field(0.5, gt=0, lt=1)  # jsd's weight on the teacher; 0.5: symmetric
    # Rows (tokens) the KD/CE loss upcasts at a time; None: KD_CHUNK_ELEMENTS // vocab (x2
    # with kd_top_k, whose chunks hold fewer vocabulary-wide buffers)
    kd_chunk_size: PositiveInt | None = None
    # KD/CE from the student's last hidden state and lm_head, block by block: its [B, L, V]
    # logits (and the teacher's) never exist (trainer/kd_fused.py)
    kd_fused_lm_head: bool = False
    ce_weight: NonNegativeFloat = 0.5
    kd_weight: NonNegativeFloat = 0.5
    feature_weight: NonNegativeFloat = 0.0
    feature_loss: Literal["mse", "cosine"] = "mse"
    layer_map: Literal["uniform"] | LayerPairs = "uniform"  # student->teacher layers
    attention_weight: NonNegativeFloat = 0.0
    # How many layers get the attention loss (a count), or the student layer indices.
    attention_layers: NonNegativeInt | list[NonNegativeInt] = 0

    # --- eval, checkpoints, logging ---------------------------------------------------------
    eval_steps: PositiveInt = 100  # in optimizer steps
    eval_max_batches: PositiveInt | None = None  # None: the whole eval split
    save_steps: PositiveInt | None = None  # None: at eval time and at the end
    keep_last: PositiveInt = 2
    logging_steps: PositiveInt = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # What the live watchdog does per finding id (`--policy ID=ACTION` wins over it).
    watchdog_policy: dict[str, Literal["abort", "adjust", "warn", "ignore"]] = Field(
        default_factory=dict
    )


@contextmanager
def pydantic_plugins_off() -> Iterator[None]:
    """Build a validator without pydantic plugins, as Typer builds its own: finding plugins
    scans the entry points of every installed package (~5 ms of each `doctor check` start),
    and an observability plugin has nothing to watch in the doctor's own config model. Other
    models in the process keep their plugins."""
    before = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYDANTIC_DISABLE_PLUGINS"]
        else:
            os.environ["PYDANTIC_DISABLE_PLUGINS"] = before


with pydantic_plugins_off():
    TrainConfig.model_rebuild(force=True)


def config_keys() -> list[str]:
    return list(TrainConfig.model_fields)
