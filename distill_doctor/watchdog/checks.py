"""The live-only checks: what the watchdog can see in a running process and a log cannot
(scheduler vs optimizer call counts, the optimizer's parameter coverage, a teacher left
trainable, the planned LR curve), as pure functions of numbers that return `Finding`s.

The torch side (`probes`) reads the numbers; this module judges them, registers the docs
(kind "live") and never imports torch, so `doctor rules` lists them at linter speed.
"""

from __future__ import annotations

from collections.abc import Sequence

from distill_doctor.detectors import lr_zero
from distill_doctor.detectors.values import emit
from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc, register
from distill_doctor.rules import scheduler_steps_mismatch as mismatch_rule

# scheduler.step() calls per optimizer step above which the schedule runs visibly fast: an
# extra call at a resume or an epoch end stays far below it, a per-micro-batch call at
# accumulation 2 or more reaches it.
FAST_SCHEDULE_RATIO = 1.5
# Judge the call ratio only after this many optimizer steps (one step could be the odd one).
MIN_OPTIMIZER_STEPS = 2

SCHEDULER_PER_MICROBATCH = register(
    RuleDoc(
        id="scheduler-stepped-per-microbatch",
        code="DD240",
        kind="live",
        severity=Severity.ERROR,
        summary="scheduler.step() runs more often than optimizer.step() (per micro-batch).",
        why="Under gradient accumulation the optimizer steps once per accumulation_steps "
        "micro-batches. A scheduler stepped per micro-batch runs its schedule that many times "
        "too fast: with accumulation 16 it reaches LR 0 after 1/16 of the run and training goes "
        "on with no learning rate (the seed run's lost epochs).",
        fix="Call scheduler.step() right after optimizer.step(), inside the `if (i + 1) % "
        "accumulation_steps == 0` block, never once per batch.",
        example="scheduler.step() ran 32 times for 2 optimizer steps (16x): LR 0 at step 293",
    )
)
PARAMS_NOT_IN_OPTIMIZER = register(
    RuleDoc(
        id="params-not-in-optimizer",
        code="DD241",
        kind="live",
        severity=Severity.ERROR,
        summary="Trainable student parameters are missing from the optimizer, or teacher "
        "parameters are inside it.",
        why="A parameter the optimizer does not hold never moves, however long the run; a "
        "teacher parameter inside it drifts away from the model being distilled. Both happen "
        "when a model is wrapped, reloaded or moved after the optimizer was built.",
        fix="Build the optimizer last, from `student.parameters()` (after PEFT/DDP wrapping and "
        "`.to(device)`), and keep the teacher out of it.",
        example="12 of 40 trainable student tensors (31% of weights) are not in the optimizer",
    )
)
TEACHER_NOT_FROZEN = register(
    RuleDoc(
        id="teacher-not-frozen",
        code="DD242",
        kind="live",
        severity=Severity.ERROR,
        summary="The teacher is in train mode, has requires_grad on, or its weights change.",
        why="In train mode the teacher's dropout makes its targets noisy; with gradients on it "
        "costs memory and time, and if its weights change the student chases a moving target.",
        fix="teacher.eval(); teacher.requires_grad_(False); run it under torch.no_grad(), and "
        "keep its parameters out of the optimizer.",
        example="teacher in train mode with 52 tensors requiring grad",
    )
)
WATCHDOG_ERROR = register(
    RuleDoc(
        id="watchdog-error",
        code="DD243",
        kind="live",
        severity=Severity.WARNING,
        summary="A check of the watchdog itself failed; training went on without it.",
        why="The watchdog must never kill the run it guards: a crash inside one of its checks "
        "becomes this finding, the check is switched off and training continues.",
        fix="Report it with the message (it names the check and the exception); the rest of "
        "the watchdog keeps running.",
        example="loss-spike raised ZeroDivisionError at step 120; switched off",
    )
)


def scheduler_call_ratio(
    optimizer_steps: int, scheduler_steps: int, step: int, scheduler_total: int | None
) -> Finding | None:
    """scheduler-stepped-per-microbatch from the call counts since the run (re)started."""
    if optimizer_steps < MIN_OPTIMIZER_STEPS:
        return None
    ratio = scheduler_steps / optimizer_steps
    if ratio < FAST_SCHEDULE_RATIO:
        return None
    evidence: dict = {
        "scheduler_steps": scheduler_steps,
        "optimizer_steps": optimizer_steps,
        "ratio": round(ratio, 2),
    }
    end = ""
    if scheduler_total:
        ends_at = int(scheduler_total / ratio)
        evidence["schedule_ends_at_step"] = ends_at
        end = f"; its {scheduler_total:,}-step schedule ends at optimizer step {ends_at:,}"
    return emit(
        SCHEDULER_PER_MICROBATCH,
        step,
        f"scheduler.step() ran {scheduler_steps} times for {optimizer_steps} optimizer steps "
        f"({ratio:.1f}x){end}.",
        evidence,
    )


def planned_schedule(lrs: Sequence[float], planned_steps: int) -> list[Finding]:
    """Judge the LR each planned optimizer step will use (a dry run of the real scheduler):
    `lr-zero` when it reaches ~0 with a fifth of the run left, `scheduler-steps-mismatch` when
    it is still decaying at the end of the run (told too many steps)."""
    if not lrs or planned_steps <= 0:
        return []
    peak = max(lrs)
    if peak <= 0:
        return []
    peak_at = lrs.index(peak)
    low = lr_zero.LOW_FRACTION_OF_PEAK * peak
    for step in range(peak_at, len(lrs)):
        if lrs[step] <= low:
            share_left = (planned_steps - step) / planned_steps
            if share_left < lr_zero.MIN_SHARE_LEFT:
                break
            return [
                emit(
                    lr_zero.DOC,
                    0,
                    f"Predicted before step 1: the scheduler brings the LR to {lrs[step]:.3g} at "
                    f"step {step + 1:,} of {planned_steps:,}, {share_left:.0%} of the run left.",
                    {
                        "predicted": True,
                        "zero_at_step": step + 1,
                        "planned_steps": planned_steps,
                        "share_left": round(share_left, 4),
                        "peak_lr": peak,
                    },
                )
            ]
    return _still_decaying(lrs, peak, planned_steps)


def _still_decaying(lrs: Sequence[float], peak: float, planned_steps: int) -> list[Finding]:
    final = lrs[-1]
    share = final / peak
    tenth = max(1, len(lrs) // 10)
    before = lrs[-1 - tenth] if len(lrs) > tenth else lrs[0]
    # A schedule still falling at the end and far from its floor was told more steps than
    # run; a constant or finished schedule is flat there.
    if share < 1 - mismatch_rule.NEVER_DECAYS_SHARE / 2 or not final < before:
        return []
    per_step = (before - final) / tenth
    ends_at = planned_steps + int(final / per_step) if per_step > 0 else None
    severity = Severity.ERROR if share >= mismatch_rule.NEVER_DECAYS_SHARE else Severity.WARNING
    return [
        emit(
            mismatch_rule.DOC,
            0,
            f"Predicted before step 1: after {planned_steps:,} optimizer steps the LR is still "
            f"{share:.0%} of its peak and falling"
            + (f"; the schedule would end near step {ends_at:,}." if ends_at else "."),
            {
                "predicted": True,
                "optimizer_steps": planned_steps,
                "final_lr": final,
                "final_lr_share_of_peak": round(share, 4),
                "peak_lr": peak,
                "schedule_ends_near_step": ends_at,
            },
            severity,
        )
    ]


def optimizer_coverage(
    student_total: int, student_missing: int, missing_share: float, teacher_inside: int, step: int
) -> Finding | None:
    """params-frozen when the optimizer holds none of the student's trainable tensors (it
    cannot move: said at step 0, before the checksum shows it), params-not-in-optimizer when
    it misses some, or holds teacher tensors."""
    from distill_doctor.detectors import params_frozen

    if student_total and student_missing == student_total:
        return emit(
            params_frozen.DOC,
            step,
            f"The optimizer holds none of the student's {student_total} trainable tensors: "
            "its weights cannot move.",
            {"student_tensors": student_total, "missing": student_missing, "predicted": True},
        )
    if not student_missing and not teacher_inside:
        return None
    parts = []
    if student_missing:
        parts.append(
            f"{student_missing} of {student_total} trainable student tensors "
            f"({missing_share:.0%} of weights) are not in the optimizer"
        )
    if teacher_inside:
        parts.append(f"{teacher_inside} teacher tensors are in the optimizer")
    return emit(
        PARAMS_NOT_IN_OPTIMIZER,
        step,
        "; ".join(parts) + ".",
        {
            "student_tensors": student_total,
            "missing": student_missing,
            "missing_weight_share": round(missing_share, 4),
            "teacher_tensors_in_optimizer": teacher_inside,
        },
    )


def teacher_state(
    training: bool, requires_grad: int, checksum_drift: float | None, step: int
) -> Finding | None:
    problems = []
    if training:
        problems.append("in train mode")
    if requires_grad:
        problems.append(f"{requires_grad} tensors requiring grad")
    if checksum_drift:
        problems.append(f"its weights changed (checksum moved by {checksum_drift:.3g})")
    if not problems:
        return None
    return emit(
        TEACHER_NOT_FROZEN,
        step,
        "The teacher is " + ", with ".join(problems) + ".",
        {
            "train_mode": training,
            "requires_grad_tensors": requires_grad,
            "checksum_drift": checksum_drift,
        },
    )


def watchdog_error(check: str, error: BaseException, step: int | None) -> Finding:
    text = f"{type(error).__name__}: {error}"[:300]
    return emit(
        WATCHDOG_ERROR,
        step,
        f"{check} raised {text}; switched off, training goes on.",
        {"check": check, "error": text},
    )
