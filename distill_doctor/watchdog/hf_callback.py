"""`DoctorCallback`: the watchdog for `transformers.Trainer` (and TRL's trainers, which
subclass it). A thin adapter: it turns the callback events into Records for the `Watchdog`,
runs the live probes on the optimizer, scheduler and model the events hand it, and carries out
an abort the Trainer's way (`control.should_save`, then `control.should_training_stop`).

    from distill_doctor import DoctorCallback
    trainer = Trainer(..., callbacks=[DoctorCallback()])
    trainer.train()
    [f.id for f in trainer.callback_handler.callbacks[-1].findings]

Syncs with the device only where the Trainer's own logging does (on_log): the masked-label
count is kept as a device tensor between logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from distill_doctor import records as keys
from distill_doctor.events import EventLog
from distill_doctor.findings import Finding, Severity
from distill_doctor.postmortem.keys import map_metrics
from distill_doctor.watchdog import probes
from distill_doctor.watchdog.checks import planned_schedule
from distill_doctor.watchdog.core import Watchdog
from distill_doctor.watchdog.policy import SCHEDULE_IDS, Action, build_policy
from distill_doctor.watchdog.repairs import event

IGNORE_INDEX = -100


class _EventsFile:
    """`finding` and `action` events appended to a file (the postmortem reads it)."""

    def __init__(self, path: Path) -> None:
        self.log = EventLog(path)

    def on_finding(self, finding: Finding, action: Action) -> None:
        self.log.write("finding", **finding.to_dict(), action=action.value)

    def on_action(self, event: dict[str, Any]) -> None:
        self.log.write("action", **event)


class _Printer:
    def on_finding(self, finding: Finding, action: Action) -> None:
        from rich.console import Console

        at = "before training" if not finding.step else f"step {finding.step}"
        Console(stderr=True, highlight=False).print(
            f"[Doctor] [{finding.severity.value}] {finding.id} ({at}, {action.value}): "
            f"{finding.message}",
            markup=False,
        )


class DoctorCallback(TrainerCallback):
    """Watch a `transformers.Trainer` run. `on_error`: what an error finding does ("abort":
    save and stop; "warn"); `policy`: per-id actions ("ID=abort|warn|ignore"); `teacher`: the
    teacher model of a KD run, to check it stays frozen; `events_path`: where to append the
    findings as events.jsonl; `quiet`: do not print findings."""

    def __init__(
        self,
        on_error: str = "abort",
        policy: list[str] | None = None,
        teacher: Any = None,
        events_path: str | Path | None = None,
        quiet: bool = False,
    ) -> None:
        sinks: list[Any] = [] if quiet else [_Printer()]
        if events_path is not None:
            sinks.append(_EventsFile(Path(events_path)))
        self.watchdog = Watchdog(policy=build_policy(on_error, policy or []), sinks=sinks)
        self.teacher = teacher
        self.counter: probes.StepCounter | None = None
        self.sample: probes.ParamSample | None = None
        self.teacher_probe: probes.TeacherProbe | None = None
        self.scheduler_total: int | None = None
        self._valid_in_step: Any = None  # device tensors: no sync until on_log
        self._masked_steps: Any = None
        self._hook: Any = None
        self.model: Any = None

    @property
    def findings(self) -> list[Finding]:
        return self.watchdog.findings

    # --- events ---------------------------------------------------------------------------

    def on_train_begin(
        self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs
    ):
        self.watchdog.stopper = _TrainerStop(control)
        self.watchdog.repairer = HfRepairs(args, state, optimizer, lr_scheduler)
        self.model = model
        if not state.is_world_process_zero:  # every rank judges; the first one reports
            self.watchdog.sinks = []
        step = state.global_step
        found: list[Finding | None] = []
        if optimizer is not None and lr_scheduler is not None:
            self.counter = self._guard(probes.StepCounter, optimizer, lr_scheduler)
            remaining = max(state.max_steps - step, 0)
            lrs = self._guard(probes.scheduler_dry_run, optimizer, lr_scheduler, remaining)
            if lrs and not step:
                found += planned_schedule(lrs, state.max_steps)
        if optimizer is not None and model is not None:
            found.append(
                self._guard(probes.optimizer_coverage, optimizer, model, self.teacher, step)
            )
        if self.teacher is not None:
            self.teacher_probe = self._guard(probes.TeacherProbe, self.teacher)
            if self.teacher_probe is not None:
                found.append(self._guard(self.teacher_probe.check, step, False))
        if model is not None:
            self.sample = self._guard(probes.ParamSample, model)
            self._hook = model.register_forward_pre_hook(self._count_labels, with_kwargs=True)
        self.watchdog.report([f for f in found if f])
        return control

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        """With `adjust` for non-finite values: a step whose gradients are not finite is
        skipped (grads dropped, so the optimizer leaves every weight and its state alone).
        This reads the gradient norm: one device sync per step, only under `adjust`."""
        policy = self.watchdog.policy
        adjusting = policy.action_for("grad-nonfinite", Severity.ERROR) is Action.ADJUST
        if not adjusting or self.model is None:
            return control
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if grads and not torch.isfinite(torch.stack([g.norm() for g in grads]).norm()):
            self.model.zero_grad(set_to_none=True)
            self.watchdog.announce(self.watchdog.repairer.skip(state.global_step + 1))
        return control

    def on_step_begin(self, args, state, control, **kwargs):
        self._valid_in_step = None
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self._valid_in_step is not None:  # all on the device: counted, not yet read
            masked = (self._valid_in_step == 0).long()
            self._masked_steps = (
                masked if self._masked_steps is None else self._masked_steps + masked
            )
        if self.counter is not None:
            found = self._guard(self.counter.check, state.global_step, None)
            if found:
                self.watchdog.report([found])
        if self.watchdog.abort is not None or self._any_rank_aborts(args):
            # Again at every step end: the Trainer clears should_save when a step begins, and
            # an abort said before step 1 must still save (it saves right after this event).
            self.watchdog.stopper.request_stop("watchdog")
        return control

    def _any_rank_aborts(self, args: Any) -> bool:
        """Under a distributed Trainer every rank must stop at the same step (a rank that
        stops alone leaves the others waiting in a collective): one all-reduce per step."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return False
        flag = torch.tensor([1.0 if self.watchdog.abort is not None else 0.0], device=args.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_log(self, args, state, control, logs=None, **kwargs):
        record: dict[str, Any] = {keys.STEP: state.global_step, keys.PLANNED_STEPS: state.max_steps}
        map_metrics(logs or {}, record)
        if self._masked_steps is not None:
            record[keys.ALL_MASKED_BATCHES] = int(self._masked_steps)
        if self.sample is not None:
            ratio = self._guard(self.sample.update_ratio)
            if ratio is not None:
                record["update_ratio"] = ratio
        if any(k.startswith(keys.EVAL_PREFIX) for k in record):
            self.watchdog.observe_eval(record)
        else:
            self.watchdog.observe(record)
        if self.teacher_probe is not None:
            found = self._guard(self.teacher_probe.check, state.global_step)
            if found:
                self.watchdog.report([found])
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.watchdog.finish()
        if self._hook is not None:
            self._hook.remove()
        if self.counter is not None:
            self.counter.close()
        return control

    # --- helpers --------------------------------------------------------------------------

    def _count_labels(self, _module: Any, args: tuple, kwargs: dict) -> None:
        labels = kwargs.get("labels")
        if labels is None or not hasattr(labels, "ne"):
            return
        # Causal LMs shift labels inside the loss: the first position never counts.
        shifted = labels[..., 1:] if labels.dim() > 1 else labels
        valid = shifted.ne(IGNORE_INDEX).sum()
        self._valid_in_step = valid if self._valid_in_step is None else self._valid_in_step + valid

    def _guard(self, probe: Any, *args: Any) -> Any:
        return self.watchdog.probe(getattr(probe, "__name__", "probe"), None, probe, *args)


class HfRepairs:
    """The repairs transformers allows from a callback: the schedule rebuilt in place (the
    Trainer keeps its scheduler object, so its lambdas are swapped), a step skipped. A rollback
    or a change of batch size needs the training loop, so those findings abort."""

    def __init__(self, args: Any, state: Any, optimizer: Any, scheduler: Any) -> None:
        self.args, self.state = args, state
        self.optimizer = probes.inner_optimizer(optimizer) if optimizer is not None else None
        self.scheduler = probes.inner_scheduler(scheduler) if scheduler is not None else None
        self.done: list[dict[str, Any]] = []

    def repair(self, finding: Finding, step: int) -> dict[str, Any] | None:
        if finding.id in SCHEDULE_IDS:
            return self._schedule(finding, step)
        if finding.id in ("nonfinite-loss", "grad-nonfinite"):
            return event(
                "skip",
                finding,
                step,
                {"update": "pending"},
                {"update": "skipped"},
                "the step's gradients were dropped before optimizer.step()",
            )
        return None

    def skip(self, step: int) -> dict[str, Any]:
        made = {
            "action": "skip",
            "finding": "grad-nonfinite",
            "step": step,
            "before": {"grad_norm": "non-finite"},
            "after": {"update": "skipped"},
            "what": "gradients dropped before optimizer.step()",
        }
        self.done.append(made)
        return made

    def _schedule(self, finding: Finding, step: int) -> dict[str, Any] | None:
        from transformers import get_scheduler

        scheduler, optimizer = self.scheduler, self.optimizer
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) or optimizer is None:
            return None
        total = self.state.max_steps
        stand_in = torch.optim.SGD([torch.zeros(1)], lr=1.0)
        intended = get_scheduler(
            self.args.lr_scheduler_type,
            stand_in,
            num_warmup_steps=self.args.get_warmup_steps(total),
            num_training_steps=total,
        ).lr_lambdas[0]
        now = optimizer.param_groups[0]["lr"]
        peak = scheduler.base_lrs[0] or 1.0
        start, from_epoch = now / peak, scheduler.last_epoch
        ramp = max(1, (total - step) // 20)

        def multiplier(e: int) -> float:
            return start + (intended(e) - start) * min(1.0, (e - from_epoch) / ramp)

        scheduler.lr_lambdas = [multiplier for _ in optimizer.param_groups]
        made = event(
            "adjust",
            finding,
            step,
            {"lr": now},
            {"schedule": f"the configured {self.args.lr_scheduler_type} over {total} steps"},
            "the scheduler's lambdas swapped in place, ramping from the current LR",
        )
        self.done.append(made)
        return made

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done}


class _TrainerStop:
    """An abort the Trainer's way: save a checkpoint at this step, then stop."""

    def __init__(self, control: Any) -> None:
        self.control = control

    def request_stop(self, reason: str) -> None:
        self.control.should_save = True
        self.control.should_training_stop = True
