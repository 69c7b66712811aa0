"""`doctor watch RUN`: diagnose a run of any framework live, from the logs it is writing.

RUN is a Hugging Face output_dir, a TensorBoard run folder, a growing log file (HF stdout
saved by `tee`, tqdm or plain prints, JSON lines, Lightning's metrics.csv, events.jsonl), or
`-` for a pipe. The run's code is not touched: the findings come from the same detectors as
`doctor postmortem`, as the lines arrive.

Exit codes: 0 no error finding, 1 error findings, 2 bad input (as every command). Imports no
torch: the follow, the parsers, the detectors and the view are plain Python."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from distill_doctor.commands.log_options import (
    Accumulation,
    FormatIn,
    KeyMap,
    LoggingSteps,
    VocabSize,
)
from distill_doctor.errors import InputError


class ExitLevel(str, Enum):
    error = "error"
    warning = "warning"
    never = "never"


class SignalName(str, Enum):
    TERM = "TERM"
    INT = "INT"


def watch(
    run: Annotated[
        str,
        typer.Argument(
            metavar="RUN",
            help="HF output_dir, TensorBoard run dir, a growing log file, or - for a pipe.",
        ),
    ],
    exec_: Annotated[
        str | None,
        typer.Option(
            "--exec",
            metavar="CMD",
            help="Run CMD (a shell command) per finding, with DOCTOR_FINDING_ID, _SEVERITY, "
            "_STEP, _MESSAGE and _JSON in its environment.",
        ),
    ] = None,
    kill_pid: Annotated[
        int | None,
        typer.Option(
            "--kill-pid",
            metavar="PID",
            help="Stop this process on an error finding (or on what --policy says to abort).",
        ),
    ] = None,
    signal_name: Annotated[
        SignalName,
        typer.Option("--signal", metavar="TERM|INT", help="The signal --kill-pid sends."),
    ] = SignalName.TERM,
    after_checkpoint: Annotated[
        bool,
        typer.Option(
            "--after-checkpoint",
            help="With --kill-pid: wait for the checkpoint the logs show is due, then stop.",
        ),
    ] = False,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            metavar="ID=ACTION",
            help="Per finding: abort (stop the run with --kill-pid), warn or ignore (repeatable).",
        ),
    ] = None,
    exit_on: Annotated[
        ExitLevel,
        typer.Option(
            "--exit-on",
            metavar="error|warning|never",
            help="Stop watching at the first finding this bad.",
        ),
    ] = ExitLevel.never,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            metavar="SECONDS",
            min=0.1,
            help="Stop watching when the logs have not grown for this long.",
        ),
    ] = None,
    format_in: FormatIn = None,
    logging_steps: LoggingSteps = None,
    accumulation: Accumulation = None,
    vocab_size: VocabSize = None,
    key_map: KeyMap = None,
) -> None:
    """Follow a run's logs as they are written and diagnose it live."""
    from rich.console import Console

    from distill_doctor.detectors import RunFacts
    from distill_doctor.findings import has_errors
    from distill_doctor.postmortem.keymap import parse_key_map
    from distill_doctor.postmortem.parsers import ParseOptions
    from distill_doctor.watchdog import actions
    from distill_doctor.watchdog.core import Watchdog
    from distill_doctor.watchdog.follow import Follower
    from distill_doctor.watchdog.log_watch import LogWatch
    from distill_doctor.watchdog.policy import build_policy
    from distill_doctor.watchdog.run_plan import RunPlan
    from distill_doctor.watchdog.view import LiveView, PlainView

    if after_checkpoint and kill_pid is None:
        raise InputError("--after-checkpoint says when --kill-pid stops the run; give --kill-pid.")
    if kill_pid is not None:
        actions.check_pid(kill_pid)
    rules = build_policy("abort" if kill_pid is not None else "warn", policy or [])
    options = ParseOptions(
        accumulation=accumulation,
        logging_steps=logging_steps,
        key_map=parse_key_map(key_map or []),
    )
    follower = Follower(run, options, format_in)

    console = Console(highlight=False, soft_wrap=True)

    def say(text: str) -> None:
        console.print(f"[Watch] {text}", markup=False)

    plan = RunPlan(logging_steps=logging_steps)
    view = (LiveView if console.is_terminal else PlainView)(console, 1, evidence=True)
    exit_rule = actions.ExitOn(exit_on.value)
    hook = actions.ExecHook(exec_, say) if exec_ else None
    watchdog = Watchdog(
        RunFacts(vocab_size=vocab_size) if vocab_size else None,
        rules,
        [sink for sink in (view, exit_rule, hook) if sink is not None],
    )
    killer = None
    if kill_pid is not None:
        killer = actions.ProcessKiller(kill_pid, signal_name.value, after_checkpoint, plan, say)
        watchdog.stopper = killer
    stops = f" · stops pid {kill_pid} with SIG{signal_name.value}" if killer else ""
    header = f"Watching {'<stdin>' if follower.is_stream else run}{stops} · Ctrl-C to stop"
    end = LogWatch(
        follower, watchdog, view, plan, say, header, killer, hook, exit_rule, idle_timeout
    ).run()
    ends = {
        "ended": "the stream ended",
        "idle": f"no new log data for {idle_timeout:g}s" if idle_timeout else "",
        "exit-on": f"--exit-on {exit_on.value}: {end.finding.id if end.finding else ''}",
        "interrupted": "stopped",
    }
    findings = watchdog.findings
    errors = sum(f.severity.value == "error" for f in findings)
    counts = f"{len(findings)} finding(s), {errors} error(s)" if findings else "no findings"
    upto = f" to step {end.last_step}" if end.last_step is not None else ""
    say(f"{ends[end.reason]}: {end.records} records{upto}; {counts}")
    if not end.records:
        say("no training record was read: nothing to judge (exit code 2)")
        raise typer.Exit(2)
    raise typer.Exit(1 if has_errors(findings) else 0)
