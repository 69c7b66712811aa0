"""`adjust`: the smallest change that saves a sick run, made in place and written down.

Each repair answers one finding id, returns the `action` event it made (what it changed, the
values before and after) and is bounded: a run has a repair budget, and a problem that comes
back after its repairs ends in an abort with the diagnosis. The bundled trainer's repairs:

    schedule   scheduler-stepped-per-microbatch, scheduler-steps-mismatch, lr-zero (predicted):
               the schedule is rebuilt for the optimizer steps that remain, ramping from the
               current LR to the config's own schedule (no jump), and gated so that it moves
               once per optimizer step whatever calls it; kept across a resume.
    skip       nonfinite-loss, grad-nonfinite, all-labels-masked: the step's update is vetoed
               before optimizer.step() (weights, optimizer state and schedule untouched);
               SKIPS_BEFORE_ROLLBACK non-finite steps in a row roll back instead.
    rollback   loss-spike, loss-divergence, and repeated non-finite steps: the weights and
               optimizer state of the newest checkpoint, the LR halved, the batches since then
               skipped (the data cursor moves on), at most MAX_ROLLBACKS times.
    top-k      memory-growth, memory-pressure: KD switched to the teacher's top-k logits.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from distill_doctor.findings import Finding
from distill_doctor.rules.lr_schedule import lr_multiplier
from distill_doctor.watchdog.policy import MEMORY_IDS, ROLLBACK_IDS, SCHEDULE_IDS, SKIP_IDS

SKIPS_BEFORE_ROLLBACK = 3
MAX_ROLLBACKS = 2
LR_FACTOR_ON_ROLLBACK = 0.5
TOP_K_ON_MEMORY = 64
LOSS_SCALE_FLOOR = 2.0**10  # fp16: the GradScaler's scale after a rollback, at least
REPAIR_BUDGET = 10  # repairs per run; past it a finding aborts


class GatedLambdaLR(torch.optim.lr_scheduler.LambdaLR):
    """A LambdaLR that moves at most once per optimizer step, however often step() is called
    (the per-micro-batch bug becomes harmless). Counts optimizer steps with a post-hook."""

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier: Any) -> None:
        self.optimizer_steps = 0
        self.consumed = 0
        self.ready = False
        self._hook = optimizer.register_step_post_hook(self._count)
        super().__init__(optimizer, multiplier)  # sets the LR of step 0 (no jump)
        self.ready = True

    def _count(self, *_: Any) -> None:
        self.optimizer_steps += 1

    def step(self, epoch: int | None = None) -> None:
        if self.ready:
            if self.optimizer_steps <= self.consumed:
                return  # a second call within one optimizer step: ignored
            self.consumed = self.optimizer_steps
        super().step(epoch)

    def advance(self, steps: int) -> None:
        """Move `steps` optimizer steps on at once (a resume, a rollback)."""
        with warnings.catch_warnings():  # "step() before optimizer.step()": on purpose here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                super().step()

    def close(self) -> None:
        self._hook.remove()

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "_hook"}


def repaired_multiplier(cfg: Any, planned: int, from_step: int, start: float) -> Any:
    """LR / peak for optimizer step `from_step + e`: a ramp from `start` (the LR now) to the
    config's own schedule over the warmup length (at least 5% of what remains), then it."""
    ramp = max(1, cfg.warmup_steps, (planned - from_step) // 20)

    def multiplier(e: int) -> float:
        step = from_step + e
        target = lr_multiplier(step, planned, cfg.warmup_steps, cfg.lr_scheduler, cfg.min_lr_ratio)
        return start + (target - start) * min(1.0, e / ramp)

    return multiplier


class TrainerRepairs:
    """The bundled trainer's repairs (see the module doc). `run`: the loop's `Run`."""

    def __init__(self, run: Any, run_dir: Any) -> None:
        self.run = run
        self.run_dir = run_dir
        self.done: list[dict[str, Any]] = []  # the action events made (saved for a resume)
        self.skips_in_a_row = 0
        self.rollbacks = 0
        self.schedule: dict[str, Any] | None = None

    @property
    def budget_left(self) -> int:
        return REPAIR_BUDGET - len(self.done)

    def repair(self, finding: Finding, step: int) -> dict[str, Any] | None:
        """The repair for `finding`, made; its event, or None when it cannot be repaired
        (the caller aborts)."""
        if self.budget_left <= 0:
            return None
        if finding.id in SCHEDULE_IDS:
            event = self.rebuild_schedule(finding, step)
        elif finding.id in SKIP_IDS:
            event = self.skip_event(finding, step)
        elif finding.id in ROLLBACK_IDS:
            event = self.rollback(finding, step)
        elif finding.id in MEMORY_IDS:
            event = self.top_k(finding, step)
        else:
            event = None
        if event is not None:
            self.done.append(event)
        return event

    # --- schedule ---------------------------------------------------------------------------

    def rebuild_schedule(self, finding: Finding, step: int, start: float | None = None) -> dict:
        run = self.run
        peak = run.cfg.learning_rate
        now = run.optimizer.param_groups[0]["lr"]
        start = now / peak if start is None else start
        self.schedule = {"from_step": step, "start": start}
        self._install_schedule(step, start)
        after = run.optimizer.param_groups[0]["lr"]
        return event(
            "adjust",
            finding,
            step,
            {"lr": now, "scheduler_steps": run.scheduler_steps},
            {"lr": after, "scheduler_steps": run.planned, "ramp_to": "the config's schedule"},
            "schedule rebuilt for the steps that remain, stepped once per optimizer step",
        )

    def _install_schedule(self, from_step: int, start: float) -> None:
        run = self.run
        if isinstance(run.scheduler, GatedLambdaLR):
            run.scheduler.close()
        multiplier = repaired_multiplier(run.cfg, run.planned, from_step, start)
        run.scheduler = GatedLambdaLR(run.optimizer, multiplier)  # base: each group's peak LR
        run.scheduler_steps = run.planned

    def restore(self, saved: dict[str, Any], step: int) -> None:
        """A resumed run gets its repaired schedule back, at the step it reached."""
        self.done = list(saved.get("done", []))
        self.rollbacks = int(saved.get("rollbacks", 0))
        schedule = saved.get("schedule")
        if schedule:
            self.schedule = schedule
            self._install_schedule(schedule["from_step"], schedule["start"])
            self.run.scheduler.advance(step - schedule["from_step"])

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done, "rollbacks": self.rollbacks, "schedule": self.schedule}

    # --- skip -------------------------------------------------------------------------------

    def skip_event(self, finding: Finding, step: int) -> dict:
        return event(
            "skip",
            finding,
            step,
            {"update": "pending"},
            {"update": "skipped", "optimizer_state": "untouched", "schedule": "untouched"},
            "the step's update was vetoed before optimizer.step()",
        )

    def note_update(self, skipped_nonfinite: bool) -> bool:
        """Count non-finite skips in a row; True when it is time to roll back instead."""
        self.skips_in_a_row = self.skips_in_a_row + 1 if skipped_nonfinite else 0
        return self.skips_in_a_row >= SKIPS_BEFORE_ROLLBACK

    # --- rollback ---------------------------------------------------------------------------

    def rollback(self, finding: Finding, step: int) -> dict | None:
        from distill_doctor.trainer import checkpoint as ckpt
        from distill_doctor.trainer.loop import checkpoint_modules

        run = self.run
        found = ckpt.complete_checkpoints(self.run_dir / "checkpoints")
        if self.rollbacks >= MAX_ROLLBACKS:
            return None  # it came back after its repairs: the caller aborts with the diagnosis
        if not found:
            return self._lower_lr(finding, step)
        folder = found[-1]
        modules = {k: v for k, v in checkpoint_modules(run).items() if k != "extra"}
        lr_before = run.optimizer.param_groups[0]["lr"]
        saved = ckpt.load_checkpoint(folder, modules)
        # The schedule stays where the run is; the data cursor moves on (skipping the batches
        # since the checkpoint); the LR is halved for the retry.
        skipped = step - saved.step
        if isinstance(run.scheduler, GatedLambdaLR):
            run.scheduler.advance(skipped)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(skipped):
                    run.scheduler.step()
        self._halve_lr()
        self._raise_loss_scale_floor()
        self.rollbacks += 1
        self.skips_in_a_row = 0
        return event(
            "rollback",
            finding,
            step,
            {"step": step, "lr": lr_before},
            {
                "weights_from_step": saved.step,
                "lr": run.optimizer.param_groups[0]["lr"],
                "batches_skipped": skipped,
            },
            f"weights and optimizer state of {folder.name}, LR halved, the batches since skipped",
        )

    def _raise_loss_scale_floor(self) -> None:
        """fp16: a loss scale that collapsed to tiny values after overflows underflows every
        gradient on the retry; start it again at least at LOSS_SCALE_FLOOR."""
        scaler = self.run.scaler
        if scaler is not None and scaler.get_scale() < LOSS_SCALE_FLOOR:
            scaler.update(new_scale=float(LOSS_SCALE_FLOOR))

    def _halve_lr(self) -> None:
        run = self.run
        for group in run.optimizer.param_groups:
            group["lr"] *= LR_FACTOR_ON_ROLLBACK
        if hasattr(run.scheduler, "base_lrs"):
            run.scheduler.base_lrs = [lr * LR_FACTOR_ON_ROLLBACK for lr in run.scheduler.base_lrs]

    def _lower_lr(self, finding: Finding, step: int) -> dict:
        """No checkpoint yet to go back to (a blow-up in the first steps): the LR halved in
        place, the weights kept; bounded like a rollback."""
        lr_before = self.run.optimizer.param_groups[0]["lr"]
        self._halve_lr()
        self.rollbacks += 1
        self.skips_in_a_row = 0
        return event(
            "adjust",
            finding,
            step,
            {"lr": lr_before},
            {"lr": self.run.optimizer.param_groups[0]["lr"]},
            "no checkpoint yet to roll back to: the LR halved in place",
        )

    # --- memory -----------------------------------------------------------------------------

    def top_k(self, finding: Finding, step: int) -> dict | None:
        run = self.run
        cfg = run.loss.cfg
        if cfg.kd_weight <= 0 or cfg.kd_top_k is not None:
            return None
        k = min(TOP_K_ON_MEMORY, run.loss.kd_vocab_size)
        run.loss.cfg = cfg.model_copy(update={"kd_top_k": k})
        return event(
            "adjust",
            finding,
            step,
            {"kd_top_k": None},
            {"kd_top_k": k},
            "KD over the teacher's top-k logits: no full-vocabulary teacher distribution kept",
        )


def event(
    action: str, finding: Finding, step: int, before: dict, after: dict, what: str
) -> dict[str, Any]:
    return {
        "action": action,
        "finding": finding.id,
        "step": step,
        "before": before,
        "after": after,
        "what": what,
    }
