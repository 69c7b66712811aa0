"""accelerate launcher configs (`accelerate config` writes them): how many processes, which
mixed precision. No model, no schedule: the training script's own config holds those.

    distributed_type: FSDP
    mixed_precision: fp16
    num_processes: 2
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from distill_doctor.config.frameworks import positive_int
from distill_doctor.config.translation import Translation

NAME = "accelerate"


def translate(data: dict[str, Any]) -> Translation:
    tr = Translation()
    precision = data.get("mixed_precision")
    if precision in ("fp16", "bf16"):
        tr.take(precision, True, "mixed_precision")
    elif precision == "no":
        tr.take("fp16", False, "mixed_precision")
        tr.take("bf16", False, "mixed_precision")
    processes = positive_int(data.get("num_processes"))
    tr.run = replace(tr.run, processes=processes)
    tr.notes.append(
        "a launcher config: no model, dataset or schedule to check here; check the training "
        "config it launches (with --train-samples for the step arithmetic)."
    )
    return tr
