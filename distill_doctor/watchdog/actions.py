"""What `doctor watch` does about a run it does not own: tell someone (`--exec`), stop it
(`--kill-pid`), stop watching (`--exit-on`). Each is a sink or the stopper of the `Watchdog`;
what they have to say goes to `say` (the command prints it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from distill_doctor.errors import InputError
from distill_doctor.findings import Finding, Severity
from distill_doctor.watchdog.policy import Action
from distill_doctor.watchdog.run_plan import RunPlan

EXEC_GRACE_SECONDS = 10.0  # a notification still running when the watch ends gets this long
SIGNALS = {"TERM": signal.SIGTERM, "INT": signal.SIGINT}

Say = Callable[[str], None]


def finding_environment(finding: Finding, action: Action) -> dict[str, str]:
    """The finding as environment variables for an `--exec` command."""
    document = {**finding.to_dict(), "action": action.value}
    return {
        "DOCTOR_FINDING_ID": finding.id,
        "DOCTOR_FINDING_CODE": finding.code,
        "DOCTOR_FINDING_SEVERITY": finding.severity.value,
        "DOCTOR_FINDING_STEP": "" if finding.step is None else str(finding.step),
        "DOCTOR_FINDING_MESSAGE": finding.message,
        "DOCTOR_FINDING_JSON": json.dumps(document, allow_nan=True),
    }


class ExecHook:
    """`--exec CMD`: the shell runs CMD once per finding (not the ignored ones), with the
    finding in its environment; the watch does not wait for it, but says when it fails."""

    def __init__(self, command: str, say: Say) -> None:
        self.command = command
        self.say = say
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def on_finding(self, finding: Finding, action: Action) -> None:
        if action is Action.IGNORE:
            return
        env = {**os.environ, **finding_environment(finding, action)}
        try:
            process = subprocess.Popen(self.command, shell=True, env=env)  # noqa: S602
        except OSError as err:
            self.say(f"--exec for {finding.id} did not start: {err.strerror}")
            return
        self.running.append((finding.id, process))
        self.reap()

    def reap(self) -> None:
        """Say which finished commands failed; forget the finished ones."""
        still = []
        for finding_id, process in self.running:
            code = process.poll()
            if code is None:
                still.append((finding_id, process))
            elif code != 0:
                self.say(f"--exec for {finding_id} exited with {code}")
        self.running = still

    def close(self) -> None:
        deadline = time.monotonic() + EXEC_GRACE_SECONDS
        for finding_id, process in self.running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"--exec for {finding_id} still running (pid {process.pid}); left so")
        self.reap()


def check_pid(pid: int) -> None:
    """A process `--kill-pid` may signal: it exists, it is not this one nor init."""
    if pid <= 1 or pid == os.getpid():
        raise InputError(f"--kill-pid {pid}: give the process id of the training run.")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise InputError(f"--kill-pid {pid}: no such process.") from None
    except PermissionError:
        raise InputError(
            f"--kill-pid {pid}: not allowed to signal that process (another user's)."
        ) from None


class ProcessKiller:
    """The watchdog's stopper for a run it does not own: a signal to its process, at once or
    (`after_checkpoint`) once the checkpoint the logs show is due has been written."""

    def __init__(
        self, pid: int, signal_name: str, after_checkpoint: bool, plan: RunPlan, say: Say
    ) -> None:
        self.pid = pid
        self.signal_name = signal_name
        self.after_checkpoint = after_checkpoint
        self.plan = plan
        self.say = say
        self.reason = ""
        self.step = 0  # the run's last logged step
        self.last_checkpoint = -1
        self.due: int | None = None  # the checkpoint step it waits for
        self.done = False

    @property
    def waiting(self) -> bool:
        return self.due is not None and not self.done

    def request_stop(self, reason: str) -> None:
        if self.done or self.due is not None:
            return
        self.reason = reason
        due = self._due() if self.after_checkpoint else None
        if due is None:
            if self.after_checkpoint:
                self.say("the logs show no checkpoint due (no save cadence): stopping now")
            self.kill()
            return
        self.due = due
        self.say(f"will stop pid {self.pid} once the checkpoint due at step {due} is written")

    def _due(self) -> int | None:
        """The next checkpoint: this step's own when it is a save step not yet seen written
        (the Trainer logs a step before it saves it), else the next save step."""
        save = self.plan.save_steps
        if save and self.step % save == 0 and self.step > self.last_checkpoint:
            return self.step
        return self.plan.next_checkpoint(self.step)

    def on_checkpoint(self, step: int) -> None:
        self.last_checkpoint = max(self.last_checkpoint, step)
        if self.waiting and step >= self.due:  # type: ignore[operator]
            self.say(f"checkpoint at step {step} written")
            self.kill()

    def overdue(self, step: int) -> bool:
        """The run logged a step past the due checkpoint: it has saved it, or never will."""
        return self.waiting and step > self.due  # type: ignore[operator]

    def give_up(self) -> None:
        self.say(f"no checkpoint was written at step {self.due}; stopping now")
        self.kill()

    def kill(self) -> None:
        self.done = True
        try:
            os.kill(self.pid, SIGNALS[self.signal_name])
        except ProcessLookupError:
            self.say(f"pid {self.pid} had already exited")
            return
        except PermissionError:
            self.say(f"not allowed to signal pid {self.pid}")
            return
        self.say(f"sent SIG{self.signal_name} to pid {self.pid} ({self.reason})")


class ExitOn:
    """`--exit-on error|warning`: remembers the first finding at that severity or worse."""

    def __init__(self, level: str) -> None:
        self.rank = None if level == "never" else Severity(level).rank
        self.hit: Finding | None = None

    def on_finding(self, finding: Finding, action: Any) -> None:
        if self.rank is not None and self.hit is None and finding.severity.rank >= self.rank:
            self.hit = finding
