"""`doctor train`: run the bundled distillation trainer (the demo when no config is given).

torch and transformers are imported inside the command only: `doctor --help` imports this
module to list the commands, and must not load torch.
Under `torchrun` every rank runs this command; rank 0 alone prints and writes the run
directory (docs/distributed.md).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from distill_doctor.errors import InputError
from distill_doctor.findings import Severity
from distill_doctor.trainer.demo import demo_config_path
from distill_doctor.trainer.faults import FAULTS, Faults, check_names
from distill_doctor.watchdog.policy import EXIT_WATCHDOG_ABORT, Action, build_policy

if TYPE_CHECKING:
    from distill_doctor.config.schema import TrainConfig

# rank-lost: 75 (EX_TEMPFAIL), "try again": resuming from the last checkpoint is the retry;
# the watchdog's abort: EXIT_WATCHDOG_ABORT (3).
EXIT_CODES = {"completed": 0, "stopped": 1, "SIGINT": 130, "SIGTERM": 143, "rank-lost": 75}


def parse_set(items: list[str]) -> dict[str, Any]:
    """`key=value` pairs; a value is JSON when it parses as JSON (numbers, true, null, lists),
    else the plain string."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected key=value, e.g. --set learning_rate=1e-4.")
        try:
            overrides[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key.strip()] = raw
    return overrides


def resolve_config(
    config: Path | None, resume: Path | None, overrides: dict[str, Any]
) -> tuple[TrainConfig, str]:
    """The run's config: the resumed run's, the given file, or the demo's; then overrides."""
    # Imported here: `doctor --help` imports this module too, and needs no config schema.
    from distill_doctor.config.loader import parse_native, read_json_object
    from distill_doctor.config.native import flatten_sections

    if resume is not None:
        if config is not None:
            raise InputError("give either a CONFIG or --resume RUN_DIR, not both.")
        source = resume / "config.json"
    else:
        source = config or demo_config_path()
    label = f"{source} with overrides" if overrides else str(source)
    # Overrides replace keys wherever the file set them, flat or inside a section.
    flat, _ = flatten_sections(read_json_object(source), str(source))
    return parse_native({**flat, **overrides}, label), str(source)


def new_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def disk_error(err: OSError, run_dir: Path) -> InputError:
    return InputError(
        f"{err.filename or run_dir}: {err.strerror or err}. The run directory keeps its "
        "last good checkpoint (if any); free some space or fix the permissions, then "
        f"continue with `doctor train --resume {run_dir}`."
    )


def print_abort(console: Console, finding: Any, result: Any, run_dir: Path) -> None:
    """The watchdog's stop: what, where, the evidence, the fix and how to go on."""
    at = "before step 1" if not finding.step else f"at step {finding.step}"
    console.print(
        Text.assemble(
            ("Watchdog stopped the run", "bold red"),
            f" {at}: {finding.id} ({finding.code}) {finding.message}",
        )
    )
    evidence = ", ".join(f"{k}={v}" for k, v in finding.evidence.items())
    if evidence:
        console.print(f"  evidence: {evidence}", markup=False)
    if finding.fix:
        console.print(f"  fix: {finding.fix}", markup=False)
    console.print(
        f"  Checkpoint saved at step {result.state.step}. After the fix, resume with: "
        f"doctor train --resume {run_dir}  (or keep going as is: add --policy "
        f"{finding.id}=warn)"
    )


def summary_lines(result: Any, seconds: float) -> list[str]:
    """Before/after eval numbers (CE in nats per token, its perplexity, the weighted loss)."""
    lines = []
    before, after = result.evals.get("before"), result.evals.get("after")
    if after:
        teacher = f"teacher {after['teacher_ce']:.3f}"
        start = f"student before {before['ce']:.3f} → " if before else "student "
        at = f"after {result.last_eval_step} steps"
        lines.append(f"Eval CE (held-out, nats/token): {teacher} · {start}{at} {after['ce']:.3f}")
        ppl = f"{before['ppl']:.1f} → " if before else ""
        lines.append(f"Eval perplexity (from CE alone): {ppl}{after['ppl']:.1f}")
        loss = f"{before['loss']:.3f} → " if before else ""
        lines.append(f"Eval loss (weighted total): {loss}{after['loss']:.3f}")
    lines.append(
        f"Run directory: {result.run_dir} · {result.state.step} optimizer steps · {seconds:.0f}s"
    )
    return lines


def train(
    # hidden: help would print the argument's raw type (<path>); the docstring names it.
    config: Annotated[Path | None, typer.Argument(metavar="CONFIG", hidden=True)] = None,
    config_option: Annotated[
        Path | None,
        typer.Option("--config", metavar="CONFIG", help="The same as the CONFIG argument."),
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Run directory (default runs/<time>).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(metavar="RUN_DIR", help="Continue the run in this directory.")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Cap the optimizer steps.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Override a config key (repeatable)."),
    ] = None,
    teacher: Annotated[
        str | None, typer.Option(metavar="PATH", help="Teacher folder or cached hub name.")
    ] = None,
    student: Annotated[
        str | None, typer.Option(metavar="PATH", help="Student folder or cached hub name.")
    ] = None,
    data: Annotated[
        str | None, typer.Option(metavar="FILE", help="Data: .txt, .jsonl or a dataset dir.")
    ] = None,
    allow_errors: Annotated[
        bool,
        typer.Option(
            "--allow-errors",
            help="Exit 0 after a completed run even if the pre-flight found errors (a config "
            "broken on purpose).",
        ),
    ] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Live view of every step, and act on findings (see --on-error)."
        ),
    ] = False,
    on_error: Annotated[
        str | None,
        typer.Option(
            "--on-error",
            metavar="abort|adjust|warn",
            help="What an error finding does: abort (default with --watch: checkpoint, exit 3), "
            "adjust (repair the run in place where a repair exists, else abort) or warn "
            "(default without --watch).",
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            metavar="ID=ACTION",
            help="Per finding: abort, adjust, warn or ignore (repeatable).",
        ),
    ] = None,
    inject: Annotated[
        list[str] | None,
        typer.Option(
            "--inject",
            metavar="FAULT[@STEP]",
            help="Put a known fault into the run, to see the watchdog catch it (repeatable): "
            + ", ".join(FAULTS)
            + " (docs/watchdog.md, docs/distributed.md).",
        ),
    ] = None,
    dist_timeout: Annotated[
        float,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Under torchrun: how long a collective waits for a lost rank.",
        ),
    ] = 600.0,
) -> None:
    """Distil a teacher into a student (the offline demo by default).

    CONFIG (or --config CONFIG): a JSON training config; without one, the demo's config is
    the base and the options override it. Before the first step, the config rules of
    `doctor check` run on the resolved config ([Check] lines). Under torchrun
    (`torchrun --nproc-per-node N -m distill_doctor train ...`) it trains on N ranks.

    Exit 0: done; 1: the pre-flight found errors (unless --allow-errors) or an observer
    stopped the run; 2: bad input; 3: the watchdog stopped the run (checkpoint saved);
    75: a rank was lost (resume from the last checkpoint); 130/143: SIGINT/SIGTERM.
    """
    if config is not None and config_option is not None and config != config_option:
        raise InputError(
            f"two configs: {config} and --config {config_option}; give one "
            "(`doctor train CONFIG` and `doctor train --config CONFIG` are the same)."
        )
    config = config or config_option
    overrides = parse_set(set_ or [])
    named = {
        "teacher_model": teacher,
        "student_model": student,
        "data": data,
        "max_steps": max_steps,
    }
    overrides.update({key: value for key, value in named.items() if value is not None})
    cfg, source = resolve_config(config, resume, overrides)
    rules = build_policy(
        on_error or ("abort" if watch else "warn"), policy or [], cfg.watchdog_policy
    )
    check_names(inject or [])  # before any model loads

    run_dir = resume or run_dir or new_run_dir()
    try:
        from distill_doctor.trainer import distributed  # lazy: imports torch
    except OSError as err:  # a full disk: torch's import probes the temp folder
        raise disk_error(err, run_dir) from None
    console = Console(highlight=False, soft_wrap=True)
    try:
        with distributed.process_group(cfg.device, dist_timeout) as here:
            Faults.parse(inject or [], here)  # a rank fault needs several ranks
            if here.enabled and (
                rules.on_error is Action.ADJUST or Action.ADJUST in rules.per_id.values()
            ):
                raise InputError(
                    "adjust repairs a single-process run only for now (a repair on rank 0 "
                    "would leave the other ranks behind); under torchrun use abort or warn."
                )
            run_dir = here.broadcast_object(run_dir)  # one run directory: rank 0's clock names it
            options = Options(source, resume, inject, watch, rules)
            result, seconds, watchdog = train_ranks(cfg, run_dir, options, here, console)
    except distributed.RankLost as lost:
        console.print(f"{lost} {last_checkpoint_line(run_dir)}", style="bold red", markup=False)
        raise typer.Exit(EXIT_CODES["rank-lost"]) from None
    except OSError as err:  # a full disk, no rights
        raise disk_error(err, run_dir) from None
    if not here.is_main:
        raise typer.Exit(0 if result.status == "completed" else EXIT_CODES["stopped"])
    for line in summary_lines(result, seconds):
        console.print(line, markup=False)
    if watchdog.abort is not None and result.status == "stopped":
        print_abort(console, watchdog.abort, result, run_dir)
        raise typer.Exit(EXIT_WATCHDOG_ABORT)
    if result.status != "completed":
        again = "doctor train" if not here.enabled else "torchrun ... -m distill_doctor train"
        console.print(
            f"Stopped at step {result.state.step} ({result.stop_reason}); checkpoint saved. "
            f"Resume with: {again} --resume {run_dir}",
            markup=False,
        )
        raise typer.Exit(EXIT_CODES.get(result.stop_reason or "", EXIT_CODES["stopped"]))
    errors = [f for f in result.preflight if f.severity is Severity.ERROR]
    if errors and not allow_errors:
        console.print(
            f"Exit 1: the pre-flight found {len(errors)} error(s) in the config "
            f"({', '.join(f.id for f in errors)}; the [Check] lines above). "
            "`doctor check CONFIG --fix --output NEW.json` corrects it; --allow-errors "
            "accepts a config broken on purpose."
        )
        raise typer.Exit(1)


@dataclass(frozen=True)
class Options:
    """What `train` hands each rank besides the config."""

    source: str
    resume: Path | None
    inject: list[str] | None
    watch: bool
    rules: Any  # the watchdog's Policy


def train_ranks(
    cfg: Any, run_dir: Path, options: Options, here: Any, console: Console
) -> tuple[Any, float, Any]:
    """This rank's training; rank 0 alone writes the run directory, prints, logs and runs
    the watchdog (every rank stops when it aborts: the loop agrees on stops)."""
    from distill_doctor.trainer.loop import train as run_training  # lazy: imports torch
    from distill_doctor.trainer.run_dir import open_run
    from distill_doctor.watchdog.core import Watchdog

    resume = options.resume
    watchdog = Watchdog(policy=options.rules)
    observers: list[Any] = []
    # Rank 0 alone opens the run directory (lock, refusals, the checkpoint to resume from);
    # every rank resumes from the checkpoint it chose.
    opening = open_run(run_dir, cfg, resume is not None) if here.is_main else nullcontext()
    with opening as opened:
        checkpoint = here.broadcast_object(opened.checkpoint if opened else None)
        if here.is_main:
            observers = main_rank_observers(cfg, run_dir, options, here, console, watchdog, opened)
        started = time.perf_counter()
        try:
            result = run_training(
                cfg,
                run_dir,
                observers,
                resume=checkpoint is not None,  # open_run decided (no checkpoint yet: step 0)
                checkpoint=checkpoint,
                inject=tuple(options.inject or ()),
                extra_state={"watchdog": watchdog} if here.is_main else {},
            )
        except KeyboardInterrupt:  # Ctrl-C while loading, before the loop's handler is in place
            console.print("Interrupted before training started; nothing to save.")
            raise typer.Exit(EXIT_CODES["SIGINT"]) from None
    return result, time.perf_counter() - started, watchdog


def main_rank_observers(
    cfg: Any,
    run_dir: Path,
    options: Options,
    here: Any,
    console: Console,
    watchdog: Any,
    opened: Any,
) -> list[Any]:
    """The watchdog, the sinks and the config writer: rank 0's, the only ones that write."""
    from distill_doctor.trainer.sinks import EventsSink, ProgressSink, TensorBoardSink
    from distill_doctor.watchdog.trainer_observer import TrainerWatchdog
    from distill_doctor.watchdog.view import FindingLines, LiveView, PlainView

    ranks = f" · {here.world_size} ranks" if here.enabled else ""
    console.print(f"Config: {options.source} · run directory: {run_dir}{ranks}", markup=False)
    for note in opened.notes:
        console.print(note)
    sinks: list[Any] = [
        EventsSink(run_dir / "events.jsonl", cfg.logging_steps),
        TensorBoardSink(run_dir / "tensorboard", cfg.logging_steps),
    ]
    view = None
    if options.watch:
        view = (LiveView if console.is_terminal else PlainView)(console, cfg.logging_steps)
        sinks.append(view)
    else:  # the detectors run anyway (they are cheap); findings are printed as lines
        sinks += [ProgressSink(console), FindingLines(console)]
    watchdog.sinks = sinks
    # The config writer first (the run has started: its config is saved), then the
    # watchdog (its probes add to the record before the sinks log it), then the sinks.
    return [opened.config_writer, TrainerWatchdog(watchdog, view), *sinks]


def last_checkpoint_line(run_dir: Path) -> str:
    from distill_doctor.trainer.checkpoint import complete_checkpoints  # lazy: imports torch

    found = complete_checkpoints(run_dir / "checkpoints")
    if not found:
        return "No checkpoint was written; start the run again."
    return (
        f"The last checkpoint, {found[-1]}, is complete; resume every rank with "
        f"`torchrun ... -m distill_doctor train --resume {run_dir}`."
    )
