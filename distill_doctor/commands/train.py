"""`doctor train`: run the bundled distillation trainer (the demo when no config is given).

torch and transformers are imported inside the command only: this module is imported by the
CLI that `doctor check` and `doctor postmortem` run, and those must never load torch.
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

EXIT_CODES = {"completed": 0, "stopped": 1, "SIGINT": 130, "SIGTERM": 143}


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
) -> None:
    """Distil a teacher into a student (no CONFIG: the bundled offline demo)."""
    overrides = parse_set(set_ or [])
    named = {
        "teacher_model": teacher,
        "student_model": student,
        "data": data,
        "max_steps": max_steps,
    }
    overrides.update({key: value for key, value in named.items() if value is not None})
    cfg, source = resolve_config(config, resume, overrides)
    run_dir = resume or run_dir or new_run_dir()

    from distill_doctor.trainer.run_dir import open_run  # no torch: refusals come fast
    from distill_doctor.trainer.sinks import EventsSink, ProgressSink, TensorBoardSink

    console = Console(highlight=False, soft_wrap=True)
    try:
        with open_run(run_dir, cfg, resume is not None) as opened:  # all refusals before a write
            console.print(f"Config: {source} · run directory: {run_dir}")
            for note in opened.notes:
                console.print(note)
            from distill_doctor.trainer.loop import train as run_training  # lazy: imports torch

            started = time.perf_counter()
            observers = [
                opened.config_writer,  # first: the config is rewritten once the run has started
                EventsSink(run_dir / "events.jsonl", cfg.logging_steps),
                TensorBoardSink(run_dir / "tensorboard", cfg.logging_steps),
                ProgressSink(console),
            ]
            result = run_training(cfg, run_dir, observers, checkpoint=opened.checkpoint)
    except KeyboardInterrupt:  # Ctrl-C while loading, before the loop's handler is in place
        console.print("Interrupted before training started; nothing to save.")
        raise typer.Exit(EXIT_CODES["SIGINT"]) from None
    except OSError as err:  # a full disk (even torch's import probes the temp folder), no rights
        raise InputError(
            f"{err.filename or run_dir}: {err.strerror or err}. The run directory keeps its "
            "last good checkpoint (if any); free some space or fix the permissions, then "
            f"continue with `doctor train --resume {run_dir}`."
        ) from None
    for line in summary_lines(result, time.perf_counter() - started):
        console.print(line)
    if result.status != "completed":
        console.print(
            f"Stopped at step {result.state.step} ({result.stop_reason}); checkpoint saved. "
            f"Resume with: doctor train --resume {run_dir}"
        )
        raise typer.Exit(EXIT_CODES.get(result.stop_reason or "", EXIT_CODES["stopped"]))
