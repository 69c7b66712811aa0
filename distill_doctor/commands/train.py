"""`doctor train`: run the bundled distillation trainer (the demo when no config is given).

torch and transformers are imported inside the command only: this module is imported by the
CLI that `doctor check` and `doctor postmortem` run, and those must never load torch.
Under `torchrun` every rank runs this command; rank 0 alone prints and writes the run
directory (docs/distributed.md).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from distill_doctor.config.loader import parse_native, read_json_object
from distill_doctor.config.native import flatten_sections
from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer.demo import demo_config_path
from distill_doctor.trainer.faults import FAULTS, check_faults

# rank-lost: 75 (EX_TEMPFAIL), "try again": resuming from the last checkpoint is the retry
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
    config: Annotated[
        Path | None, typer.Argument(help="JSON config; none: the bundled offline demo.")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/<time>).")
    ] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this directory.")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Cap the optimizer steps.")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: key=value.")
    ] = None,
    teacher: Annotated[str | None, typer.Option(help="Teacher folder or name.")] = None,
    student: Annotated[str | None, typer.Option(help="Student folder or name.")] = None,
    data: Annotated[str | None, typer.Option(help="Data: .txt, .jsonl or a dataset dir.")] = None,
    inject: Annotated[
        list[str] | None,
        typer.Option(help=f"Plant a fault on purpose: {', '.join(FAULTS)} (docs/distributed.md)."),
    ] = None,
    dist_timeout: Annotated[
        float,
        typer.Option(min=1, help="Under torchrun: seconds a collective waits for a lost rank."),
    ] = 600.0,
) -> None:
    """Distil a teacher into a student (no CONFIG: the bundled offline demo). Under torchrun
    (`torchrun --nproc-per-node N -m distill_doctor train ...`) it trains on N ranks."""
    overrides = parse_set(set_ or [])
    named = {
        "teacher_model": teacher,
        "student_model": student,
        "data": data,
        "max_steps": max_steps,
    }
    overrides.update({key: value for key, value in named.items() if value is not None})
    cfg, source = resolve_config(config, resume, overrides)

    from distill_doctor.trainer import distributed  # lazy: imports torch

    console = Console(highlight=False, soft_wrap=True)
    run_dir = resume or run_dir or new_run_dir()
    try:
        with distributed.process_group(cfg.device, dist_timeout) as here:
            check_faults(inject or [], here.world_size)
            run_dir = here.broadcast_object(run_dir)  # one run directory: rank 0's clock names it
            result, seconds = train_ranks(cfg, source, run_dir, resume, inject, here, console)
    except distributed.RankLost as lost:
        console.print(f"{lost} {last_checkpoint_line(run_dir)}", style="bold red", markup=False)
        raise typer.Exit(EXIT_CODES["rank-lost"]) from None
    if here.is_main:
        for line in summary_lines(result, seconds):
            console.print(line)
    if result.status != "completed":
        if here.is_main:
            again = "doctor train" if not here.enabled else "torchrun ... -m distill_doctor train"
            console.print(
                f"Stopped at step {result.state.step} ({result.stop_reason}); checkpoint saved. "
                f"Resume with: {again} --resume {run_dir}"
            )
        raise typer.Exit(EXIT_CODES.get(result.stop_reason or "", EXIT_CODES["stopped"]))


def train_ranks(
    cfg: Any,
    source: str,
    run_dir: Path,
    resume: Path | None,
    inject: list[str] | None,
    here: Any,
    console: Console,
) -> tuple[Any, float]:
    """This rank's training; rank 0 alone writes the run directory, prints and logs."""
    from distill_doctor.trainer.loop import train as run_training  # lazy: imports torch
    from distill_doctor.trainer.sinks import EventsSink, ProgressSink, TensorBoardSink

    observers: list[Any] = []
    if here.is_main:
        prepare_run_dir(run_dir, cfg, resume is not None)
        ranks = f" · {here.world_size} ranks" if here.enabled else ""
        console.print(f"Config: {source} · run directory: {run_dir}{ranks}")
        observers = [
            EventsSink(run_dir / "events.jsonl", cfg.logging_steps),
            TensorBoardSink(run_dir / "tensorboard", cfg.logging_steps),
            ProgressSink(console),
        ]
    started = time.perf_counter()
    try:
        result = run_training(
            cfg, run_dir, observers, resume=resume is not None, inject=tuple(inject or ())
        )
    except KeyboardInterrupt:  # Ctrl-C while loading, before the loop's handler is in place
        console.print("Interrupted before training started; nothing to save.")
        raise typer.Exit(EXIT_CODES["SIGINT"]) from None
    return result, time.perf_counter() - started


def last_checkpoint_line(run_dir: Path) -> str:
    from distill_doctor.trainer.checkpoint import complete_checkpoints  # lazy: imports torch

    found = complete_checkpoints(run_dir / "checkpoints")
    if not found:
        return "No checkpoint was written; start the run again."
    return (
        f"The last checkpoint, {found[-1]}, is complete; resume every rank with "
        f"`torchrun ... -m distill_doctor train --resume {run_dir}`."
    )
