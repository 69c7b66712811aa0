"""`doctor train`: run the bundled distillation trainer (the demo when no config is given).

torch and transformers are imported inside the command only: this module is imported by the
CLI that `doctor check` and `doctor postmortem` run, and those must never load torch.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from distill_doctor.errors import InputError
from distill_doctor.findings import Severity
from distill_doctor.trainer.demo import demo_config_path
from distill_doctor.trainer.faults import FAULTS, Faults
from distill_doctor.watchdog.policy import EXIT_WATCHDOG_ABORT, build_policy

if TYPE_CHECKING:
    from distill_doctor.config.schema import TrainConfig

EXIT_CODES = {"completed": 0, "stopped": 1, "SIGINT": 130, "SIGTERM": 143}  # + 3: watchdog


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
    # Imported here: the other commands import this module too, and need no config schema.
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


def prepare_run_dir(run_dir: Path, cfg: TrainConfig, resume: bool) -> None:
    config_file = run_dir / "config.json"
    if not resume and config_file.exists():
        raise InputError(
            f"{run_dir} already holds a run; continue it with `doctor train --resume {run_dir}` "
            "or give another --run-dir."
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(cfg.model_dump(mode="json"), indent=2) + "\n")


def print_abort(console: Console, finding: Any, result: Any, run_dir: Path) -> None:
    """The watchdog's stop: what, where, the evidence, the fix and how to go on."""
    at = "before step 1" if not finding.step else f"at step {finding.step}"
    console.print(
        f"[bold red]Watchdog stopped the run[/] {at}: {finding.id} ({finding.code}) "
        f"{finding.message}"
    )
    evidence = ", ".join(f"{k}={v}" for k, v in finding.evidence.items())
    if evidence:
        console.print(f"  evidence: {evidence}")
    if finding.fix:
        console.print(f"  fix: {finding.fix}")
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
            + ".",
        ),
    ] = None,
) -> None:
    """Distil a teacher into a student (the offline demo by default).

    CONFIG (or --config CONFIG): a JSON training config; without one, the demo's config is
    the base and the options override it. Before the first step, the config rules of
    `doctor check` run on the resolved config ([Check] lines).

    Exit 0: done; 1: the pre-flight found errors (unless --allow-errors) or an observer
    stopped the run; 2: bad input; 3: the watchdog stopped the run (checkpoint saved);
    130/143: SIGINT/SIGTERM (resume with --resume).
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
    faults = Faults.parse(inject or [])
    rules = build_policy(
        on_error or ("abort" if watch else "warn"), policy or [], cfg.watchdog_policy
    )
    run_dir = resume or run_dir or new_run_dir()
    prepare_run_dir(run_dir, cfg, resume is not None)

    from distill_doctor.trainer.loop import train as run_training  # lazy: imports torch
    from distill_doctor.trainer.sinks import EventsSink, ProgressSink, TensorBoardSink
    from distill_doctor.watchdog.core import Watchdog
    from distill_doctor.watchdog.trainer_observer import TrainerWatchdog
    from distill_doctor.watchdog.view import FindingLines, LiveView, PlainView

    console = Console(highlight=False, soft_wrap=True)
    console.print(f"Config: {source} · run directory: {run_dir}")
    sinks = [
        EventsSink(run_dir / "events.jsonl", cfg.logging_steps),
        TensorBoardSink(run_dir / "tensorboard", cfg.logging_steps),
    ]
    if watch:
        view = (LiveView if console.is_terminal else PlainView)(console, cfg.logging_steps)
        sinks.append(view)
    else:  # the detectors run anyway (they are cheap); findings are printed as lines
        view = None
        sinks += [ProgressSink(console), FindingLines(console)]
    watchdog = Watchdog(policy=rules, sinks=sinks)
    # The watchdog first: its probes add to the record (update/weight) before sinks log it.
    observers = [TrainerWatchdog(watchdog, view), *sinks]
    started = time.perf_counter()
    try:
        result = run_training(
            cfg,
            run_dir,
            observers,
            resume=resume is not None,
            faults=faults,
            extra_state={"watchdog": watchdog},
        )
    except KeyboardInterrupt:  # Ctrl-C while loading, before the loop's handler is in place
        console.print("Interrupted before training started; nothing to save.")
        raise typer.Exit(EXIT_CODES["SIGINT"]) from None
    for line in summary_lines(result, time.perf_counter() - started):
        console.print(line)
    if watchdog.abort is not None and result.status == "stopped":
        print_abort(console, watchdog.abort, result, run_dir)
        raise typer.Exit(EXIT_WATCHDOG_ABORT)
    if result.status != "completed":
        console.print(
            f"Stopped at step {result.state.step} ({result.stop_reason}); checkpoint saved. "
            f"Resume with: doctor train --resume {run_dir}"
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
