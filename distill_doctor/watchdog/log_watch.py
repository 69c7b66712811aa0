"""`doctor watch`'s loop: the records of a followed run through one `Watchdog` (the detectors
of `doctor postmortem`, as the lines arrive), the live view and the actions, until the stream
ends, the run goes quiet (`idle_timeout`), a finding asks the watch to end (`--exit-on`) or
the user does (Ctrl-C)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distill_doctor import records as R
from distill_doctor.errors import InputError
from distill_doctor.findings import Finding
from distill_doctor.postmortem.analysis import _FACT_KEYS as FACT_KEYS  # steps and plans only
from distill_doctor.postmortem.formats import formats_understood
from distill_doctor.postmortem.parsers import FINDING_KEY
from distill_doctor.watchdog.actions import ExecHook, ExitOn, ProcessKiller
from distill_doctor.watchdog.core import Watchdog
from distill_doctor.watchdog.follow import Follower, Update
from distill_doctor.watchdog.run_plan import RunPlan

TICK_SECONDS = 0.5  # the loop's wake-up while nothing comes (idle timeout, exec reaping)
_SHOWN = (R.LOSS, R.LR, R.GRAD_NORM)  # a record with one of these gets a line in the view


@dataclass
class WatchEnd:
    reason: str  # ended (a pipe closed) | idle | exit-on | interrupted
    finding: Finding | None = None  # the one --exit-on ended on
    records: int = 0
    last_step: int | None = None


class LogWatch:
    def __init__(
        self,
        follower: Follower,
        watchdog: Watchdog,
        view: Any,
        plan: RunPlan,
        say: Callable[[str], None],
        header: str,
        killer: ProcessKiller | None = None,
        exec_hook: ExecHook | None = None,
        exit_on: ExitOn | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        self.follower = follower
        self.watchdog = watchdog
        self.view = view
        self.plan = plan
        self.say = say
        self.header = header
        self.killer = killer
        self.exec_hook = exec_hook
        self.exit_on = exit_on
        self.idle_timeout = idle_timeout
        self.records = 0
        self.live = False  # the history there was when the watch began has been read

    def run(self) -> WatchEnd:
        info = {"planned_steps": self.plan.planned_steps or 0, "scheduler_line": self.header}
        self.view.on_run_start(info, None)
        reason = "interrupted"
        try:
            reason = self._loop()
        except KeyboardInterrupt:
            pass
        finally:
            if reason in ("ended", "idle"):
                self.watchdog.finish()  # the run is over or quiet: whole-run verdicts now
            if self.killer is not None and self.killer.waiting:
                self.killer.give_up()
            self.view.on_run_end(reason)
            self.follower.close()
            if self.exec_hook is not None:
                self.exec_hook.close()
        hit = self.exit_on.hit if self.exit_on is not None else None
        return WatchEnd(reason, hit, self.records, self.watchdog.last_step)

    def _loop(self) -> str:
        while True:
            for update in self.follower.updates(TICK_SECONDS):
                self._handle(update)
            if self.exec_hook is not None:
                self.exec_hook.reap()
            if not self.live and self.follower.caught_up:
                self._go_live()
            waiting = self.killer is not None and self.killer.waiting
            if self.exit_on is not None and self.exit_on.hit is not None and not waiting:
                return "exit-on"
            if self.follower.ended:
                return "ended"
            grew = self.follower.last_data
            if self.idle_timeout is None or grew is None or not self.live:
                continue
            if time.monotonic() - grew >= self.idle_timeout:
                return "idle"

    def _go_live(self) -> None:
        self.live = True
        if self.records:
            self.say(
                f"read the history: {self.records} records to step {self.watchdog.last_step}; "
                "following live"
            )
        self.view.state.rebase(self.watchdog.last_step or 0)

    def _handle(self, update: Update) -> None:
        if update.kind == "record":
            self._record(update.record)
        elif update.kind == "plan":
            if self.plan.update(update.facts):
                self._plan_changed()
        elif update.kind == "checkpoint":
            self.say(f"checkpoint at step {update.step} written ({update.text})")
            if self.killer is not None:
                self.killer.on_checkpoint(update.step or 0)
        elif update.kind == "notice":
            self.say(update.text)
        elif update.kind == "error":
            raise InputError(
                f"{update.text} (read its first 64 KiB). Formats understood: "
                f"{formats_understood()}. If it is one of these, name it with --format-in."
            )

    def _record(self, record: dict[str, Any]) -> None:
        logged = record.get(FINDING_KEY)
        if isinstance(logged, dict):  # a finding the run's own watchdog logged
            self.watchdog.report([Finding.from_dict(logged)], source="stream")
            return
        planned = record.get(R.PLANNED_STEPS)
        if isinstance(planned, int) and self.plan.update({"planned_steps": planned}):
            self._plan_changed(feed=False)
        if self.plan.from_epochs(record):
            self._plan_changed()
        self.records += 1
        step = record.get(R.STEP)
        if self.killer is not None and isinstance(step, int):
            self.killer.step = max(self.killer.step, step)  # an abort below waits from here
        if any(key.startswith(R.EVAL_PREFIX) for key in record):
            self.watchdog.observe_eval(record)
            self.view.on_eval(record)
        else:
            # The view first: a finding this record raises is then shown after its step.
            if any(key in record for key in _SHOWN) and not FACT_KEYS.issuperset(record):
                self.view.on_record(record, show=self.live)
            self.watchdog.observe(record)
        if self.killer is not None and isinstance(step, int):
            if self.killer.overdue(step):
                for late in self.follower.rescan():  # the save may be on disk, not yet seen
                    self._handle(late)
                if self.killer.waiting:
                    self.killer.give_up()

    def _plan_changed(self, feed: bool = True) -> None:
        """A plan the logs gave: the view's step count; the detectors read it as a fact."""
        planned = self.plan.planned_steps
        if planned:
            self.view.state.planned = planned
            if feed:
                self.watchdog.observe(
                    {R.STEP: self.watchdog.last_step or 0, R.PLANNED_STEPS: planned}
                )
