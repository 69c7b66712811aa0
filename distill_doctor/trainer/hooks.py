"""The trainer's hook: the few points where the loop hands its numbers to observers.

The loop calls, in this order:
    on_run_start(info, control)  once, before the first step. `info`: config (dict),
                                 planned_steps, scheduler_steps, warmup_steps, device,
                                 versions, run_dir, resumed_from_step, train_blocks,
                                 eval_blocks, train_samples_in_config, preflight (the
                                 `Finding`s of `doctor check`'s rules on this run's config).
    on_record(record)            after EVERY optimizer step, with a `Record`
                                 (distill_doctor.records keys: step, epoch, lr, loss,
                                 loss_ce/kd/feature/attention, grad_norm, checksum,
                                 valid_tokens, steps_per_s, tokens_per_s, mem_*, loss_scale,
                                 planned_steps). Observers that log sparsely filter on
                                 `logging_steps` themselves.
    on_eval(record)              after each evaluation: step, eval_loss, eval_ce, eval_ppl,
                                 eval_kd, ... (eval_<component>).
    on_run_end(status)           once: "completed", "interrupted" or "stopped".

Two optional methods, for the live watchdog (observers without them are skipped):
    on_setup(run)                before on_run_start: the live objects (optimizer, scheduler,
                                 student, teacher) for probes that read them, never change them.
    before_update(metrics)       after backward and clipping, BEFORE optimizer.step(): the
                                 step's summed loss parts, grad_norm and lr. An observer that
                                 calls `control.skip_update(reason)` vetoes this one update (a
                                 non-finite gradient must not reach the weights).

An observer that wants the run to stop (the live watchdog's abort action) keeps the
`TrainControl` it got in `on_run_start` and calls `control.request_stop(reason)`: the loop
finishes the current optimizer step, saves a checkpoint and ends with status "stopped".
SIGINT/SIGTERM use the same path. Observers never raise to stop a run and never touch the
models: they read numbers.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from distill_doctor.records import Record


@dataclass
class TrainControl:
    """A stop request shared by the loop, the signal handlers and observers."""

    stop_reason: str | None = None
    skip_reason: str | None = None  # set by before_update observers; cleared every step

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:  # the first reason is the one worth reporting
            self.stop_reason = reason

    def skip_update(self, reason: str) -> None:
        self.skip_reason = self.skip_reason or reason

    @property
    def should_stop(self) -> bool:
        return self.stop_reason is not None


@contextlib.contextmanager
def stop_on_signals(control: TrainControl) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM request a stop (finish the step, checkpoint) instead of
    killing the process mid-write; the previous handlers come back on exit."""

    def handler(signum: int, _frame: Any) -> None:
        control.request_stop(signal.Signals(signum).name)

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: signals stay as they are
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class TrainObserver(Protocol):
    def on_run_start(self, info: dict[str, Any], control: TrainControl) -> None: ...

    def on_record(self, record: Record) -> None: ...

    def on_eval(self, record: Record) -> None: ...

    def on_run_end(self, status: str) -> None: ...


class Observers:
    """Fan-out to a list of observers, in order (the loop talks to this one object)."""

    def __init__(self, observers: Sequence[TrainObserver]) -> None:
        self.observers = list(observers)

    def on_setup(self, run: Any) -> None:
        for observer in self.observers:
            if hasattr(observer, "on_setup"):
                observer.on_setup(run)

    def on_run_start(self, info: dict[str, Any], control: TrainControl) -> None:
        for observer in self.observers:
            observer.on_run_start(info, control)

    def allow_update(self, metrics: dict[str, float], control: TrainControl) -> bool:
        """Ask the before_update observers; False when one vetoed this optimizer step."""
        control.skip_reason = None
        for observer in self.observers:
            if hasattr(observer, "before_update"):
                observer.before_update(metrics)
        return control.skip_reason is None

    def on_record(self, record: Record) -> None:
        for observer in self.observers:
            observer.on_record(record)

    def on_eval(self, record: Record) -> None:
        for observer in self.observers:
            observer.on_eval(record)

    def on_run_end(self, status: str) -> None:
        for observer in self.observers:
            observer.on_run_end(status)
