"""The bundled trainer's adapter: an observer on its hooks (`trainer.hooks`) that feeds the
`Watchdog`, runs the live probes and carries out an abort through the loop's `TrainControl`.

Before step 1: the pre-flight's findings, a dry run of the real scheduler over the planned
steps (LR 0 predicted, or a schedule still decaying at the end), the optimizer's coverage of
the student, the teacher's state. Every step: the record (with the update-to-weight ratio of
a weight sample) through the stream detectors, and the scheduler/optimizer call counts. Before
each optimizer.step(): a non-finite loss or gradient norm whose policy is abort is kept off the
weights, so that the checkpoint the abort writes is the last good one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from distill_doctor import records as keys
from distill_doctor.detectors import RunFacts
from distill_doctor.findings import Finding, Severity
from distill_doctor.watchdog import checks, probes
from distill_doctor.watchdog.core import Watchdog, abort_event
from distill_doctor.watchdog.policy import Action
from distill_doctor.watchdog.repairs import SCHEDULE_IDS, SKIPS_BEFORE_ROLLBACK, TrainerRepairs

# The teacher's checksum is a pass over its weights: taken every this many steps, not each.
TEACHER_CHECK_EVERY = 50


class TrainerWatchdog:
    def __init__(self, watchdog: Watchdog, view: Any = None) -> None:
        self.watchdog = watchdog
        self.view = view
        self.run: Any = None
        self.counter: probes.StepCounter | None = None
        self.sample: probes.ParamSample | None = None
        self.teacher: probes.TeacherProbe | None = None
        self.control: Any = None
        self.repairs: TrainerRepairs | None = None

    def on_setup(self, run: Any) -> None:
        self.run = run
        cfg = run.cfg
        self.watchdog.set_facts(
            RunFacts(
                planned_steps=run.planned,
                vocab_size=run.loss.kd_vocab_size,
                # The logged `loss` is the weighted total unless CE alone is trained.
                loss_is_combined=any(
                    w > 0 for w in (cfg.kd_weight, cfg.feature_weight, cfg.attention_weight)
                ),
                device=str(run.device),
            )
        )
        self.counter = self.watchdog.probe(
            "step-counter", 0, probes.StepCounter, run.optimizer, run.scheduler
        )
        self.sample = self.watchdog.probe("param-sample", 0, probes.ParamSample, run.student)
        self.teacher = self.watchdog.probe("teacher-probe", 0, probes.TeacherProbe, run.teacher)

    def on_run_start(self, info: dict[str, Any], control: Any) -> None:
        self.control = control
        self.watchdog.stopper = control
        self.repairs = TrainerRepairs(self.run, Path(info["run_dir"]))
        self.watchdog.repairer = self
        if info.get("resumed_from_step") and self.watchdog.saved_repairs:
            self.repairs.restore(self.watchdog.saved_repairs, info["resumed_from_step"])
            self._recount()
        self.watchdog.report(info.get("preflight", []), source="preflight")
        run, start = self.run, info.get("resumed_from_step") or 0
        remaining = info["planned_steps"] - start
        lrs = self.watchdog.probe(
            "scheduler-dry-run",
            0,
            probes.scheduler_dry_run,
            run.optimizer,
            run.scheduler,
            remaining,
        )
        if lrs:
            # Judged once, when the run starts; and not again when the pre-flight already
            # named the schedule's problem from the config (one finding per problem).
            if not start and "scheduler-steps-mismatch" not in self.watchdog.standing:
                self.watchdog.report(checks.planned_schedule(lrs, info["planned_steps"]))
            if self.view is not None:
                self.view.set_planned_lrs(lrs, run.memory.source)
        found = self.watchdog.probe(
            "optimizer-coverage",
            start,
            probes.optimizer_coverage,
            run.optimizer,
            run.student,
            run.teacher,
            start,
        )
        if self.teacher is not None:
            found_teacher = self.watchdog.probe(
                "teacher-probe", start, self.teacher.check, start, False
            )
            self.watchdog.report([f for f in (found, found_teacher) if f])
        elif found:
            self.watchdog.report([found])

    def before_update(self, metrics: dict[str, float]) -> None:
        """Veto the optimizer step whose loss or gradient is not finite (or, with `adjust`,
        that has no valid label), when the policy for what the detectors will call it is abort
        or adjust; the record then reports it as usual. With `adjust`, non-finite steps in a
        row end in a rollback."""
        policy = self.watchdog.policy
        nonfinite = False
        for finding_id, key in (("nonfinite-loss", "loss"), ("grad-nonfinite", keys.GRAD_NORM)):
            value = metrics.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                nonfinite = True
                if policy.action_for(finding_id, Severity.ERROR) in (Action.ABORT, Action.ADJUST):
                    self.control.skip_update(f"{key} is {value}")
                    break
        adjusting = policy.action_for("nonfinite-loss", Severity.ERROR) is Action.ADJUST
        if adjusting and self.repairs.note_update(nonfinite):
            self._rollback_after_skips(metrics)
        masked = metrics.get(keys.VALID_TOKENS) == 0
        if masked and policy.action_for("all-labels-masked", Severity.WARNING) is Action.ADJUST:
            self.control.skip_update("no valid label token")

    def _rollback_after_skips(self, metrics: dict[str, float]) -> None:
        step = (self.watchdog.last_step or 0) + 1
        cause = Finding(
            id="nonfinite-loss",
            code="DD202",
            severity=Severity.ERROR,
            message=f"{SKIPS_BEFORE_ROLLBACK} non-finite steps in a row",
            step=step,
        )
        made = self.repairs.rollback(cause, step) if self.repairs.budget_left > 0 else None
        if made is None:  # rolled back too often: stop, with the diagnosis
            self.watchdog.report([cause])
            if self.watchdog.abort is None:
                self.watchdog.abort = cause
                self.watchdog.announce(abort_event(cause, step))
            self.control.request_stop("watchdog: nonfinite-loss")
        else:
            self.repairs.done.append(made)
            self.watchdog.announce(made)

    # --- the repairer the Watchdog calls for `adjust` ---------------------------------------

    def repair(self, finding: Finding, step: int) -> dict[str, Any] | None:
        made = self.repairs.repair(finding, step)
        if made is not None and finding.id in SCHEDULE_IDS:
            self._recount()  # count the new scheduler's steps from here
        return made

    def state_dict(self) -> dict[str, Any]:
        return self.repairs.state_dict()

    def _recount(self) -> None:
        if self.counter is not None:
            self.counter.close()
        self.counter = probes.StepCounter(self.run.optimizer, self.run.scheduler)

    def on_record(self, record: dict[str, Any]) -> None:
        step = record[keys.STEP]
        # The update/weight ratio at the logging cadence (over the steps since the last one):
        # what the view and the logs show, at a fraction of the per-step cost.
        if self.sample is not None and (step == 1 or step % self.run.cfg.logging_steps == 0):
            ratio = self.watchdog.probe("param-sample", step, self.sample.update_ratio)
            if ratio is not None:
                record["update_ratio"] = ratio
        self.watchdog.observe(record)
        if self.counter is not None:
            found = self.watchdog.probe(
                "step-counter", step, self.counter.check, step, self.run.scheduler_steps
            )
            if found:
                self.watchdog.report([found])
        if self.teacher is not None and step % TEACHER_CHECK_EVERY == 0:
            found = self.watchdog.probe("teacher-probe", step, self.teacher.check, step)
            if found:
                self.watchdog.report([found])

    def on_eval(self, record: dict[str, Any]) -> None:
        self.watchdog.observe_eval(record)

    def on_run_end(self, status: str) -> None:
        self.watchdog.finish()
        if self.counter is not None:
            self.counter.close()
