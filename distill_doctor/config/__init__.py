"""Training configs: the one validated schema (`TrainConfig`) and the dialect loaders.

The trainer and `doctor check` read the same schema: one schema, not two.
"""

from distill_doctor.config.schema import TrainConfig
from distill_doctor.config.steps import batches_per_epoch, optimizer_steps

__all__ = ["TrainConfig", "batches_per_epoch", "optimizer_steps"]
