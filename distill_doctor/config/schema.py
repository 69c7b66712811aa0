"""`TrainConfig`: the bundled trainer's config, validated once at the edge.

A flat JSON object with the seed run's key names spelled exactly so (`batch_size`,
`gradient_accumulation_steps`, `epochs`, `train_samples`, `num_training_steps`, ...). Unknown
keys are errors (with a did-you-mean from the loader): a typo must never be silently ignored.
Each default carries a short reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveInt

LayerPairs = list[tuple[int, int]]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

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
    epochs: float = Field(1.0, gt=0)
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
    seed: int = 0

    # --- distillation -----------------------------------------------------------------------
    temperature: float = Field(2.0, gt=0)
    kd_loss: Literal["forward_kl", "reverse_kl", "jsd"] = "forward_kl"
    kd_scale_t2: bool = True  # multiply KD by T^2 as DistilBERT does (TRL and Liger do not)
    kd_top_k: PositiveInt | None = None  # None: KD over the full vocabulary
    kd_top_k_mode: Literal["renormalize", "tail"] = "tail"
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


def config_keys() -> list[str]:
    return list(TrainConfig.model_fields)
