"""Pre-flight: `doctor check`'s config rules, run by `doctor train` on the config it resolved,
with the dataset size it really loaded. The same rules, written once: a run that reproduces the
seed's scheduler bug on purpose still starts, but says so before the first step."""

from __future__ import annotations

from distill_doctor.config.models import resolve_model
from distill_doctor.config.schema import TrainConfig
from distill_doctor.findings import Finding
from distill_doctor.rules import run_rules
from distill_doctor.rules.base import CheckContext


def preflight_findings(cfg: TrainConfig, train_samples: int) -> list[Finding]:
    """Findings of the config rules, with `train_samples` = the training blocks the run has
    (a config's own `train_samples` is only `doctor check`'s estimate)."""
    context = CheckContext(
        config=cfg.model_copy(update={"train_samples": train_samples}),
        dialect="native",
        given=frozenset(cfg.model_fields_set) | {"train_samples"},
        teacher=resolve_model(cfg.teacher_model),
        student=resolve_model(cfg.student_model),
    )
    return run_rules(context)
