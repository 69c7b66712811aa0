"""attention-layers-invalid: attention/feature layer counts or indices the models cannot
satisfy."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

DOC = RuleDoc(
    id="attention-layers-invalid",
    code="DD109",
    kind="config",
    keys=("attention_layers", "layer_map", "attention_weight"),
    severity=Severity.ERROR,
    summary="attention_layers or layer_map name more layers, or other layers, than the "
    "student and the teacher have.",
    why="attention_layers is a count of distilled layers (each needs a student and a teacher "
    "layer) or a list of student layer indices; layer_map pairs (student, teacher) indices. "
    "An index past a model's depth fails at the first step (IndexError) or, worse, wraps to "
    "the wrong layer with negative indexing. An attention_weight with no attention layer makes "
    "a loss term that is always 0 (a warning).",
    fix="Keep counts at most the shallower model's depth and indices below each model's number "
    "of layers; with layer_map 'uniform' the trainer pairs the layers itself.",
    fix_available="sometimes",
    example='{"student_model": "distilgpt2", "attention_layers": [4, 6, 8]}',
)


def _attention_problems(ctx: CheckContext, student: int, depth: int) -> tuple[list[str], dict]:
    layers = ctx.config.attention_layers
    if isinstance(layers, int):
        if layers > depth:
            return [f"attention_layers {layers} > {depth} layers available"], {
                "attention_layers": depth
            }
        return [], {}
    bad = [i for i in layers if i >= student]
    if not bad:
        return [], {}
    problem = f"attention_layers indices {bad} >= the student's {student} layers"
    return [problem], {"attention_layers": [i for i in layers if i < student]}


def _layer_map_problems(ctx: CheckContext, student: int, teacher: int) -> tuple[list[str], dict]:
    layer_map = ctx.config.layer_map
    if layer_map == "uniform":
        return [], {}
    bad = [(s, t) for s, t in layer_map if s >= student or t >= teacher]
    if not bad:
        return [], {}
    problem = f"layer_map pairs {bad} outside (student < {student}, teacher < {teacher})"
    return [problem], {"layer_map": "uniform"}


def check(ctx: CheckContext) -> list[Finding]:
    if ctx.student is None or ctx.teacher is None:
        return []
    cfg = ctx.config
    student, teacher = ctx.student.num_layers, ctx.teacher.num_layers
    depth = min(student, teacher)
    attention, attention_patch = _attention_problems(ctx, student, depth)
    mapping, map_patch = _layer_map_problems(ctx, student, teacher)
    problems = attention + mapping
    no_layers = cfg.attention_weight > 0 and cfg.attention_layers in (0, [])
    if not problems and not no_layers:
        return []
    if not problems:
        problems = [f"attention_weight {cfg.attention_weight:g} with no attention layer"]
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.ERROR if attention + mapping else Severity.WARNING,
            message="Layer distillation the models cannot satisfy: " + "; ".join(problems) + ".",
            evidence={
                "student_layers": student,
                "teacher_layers": teacher,
                "attention_layers": str(cfg.attention_layers),
                "layer_map": str(cfg.layer_map),
                "problems": "; ".join(problems),
            },
            fix=DOC.fix,
            patch={**attention_patch, **map_patch} or None,
        )
    ]
