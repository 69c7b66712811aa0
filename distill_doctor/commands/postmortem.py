"""`doctor postmortem FILE...`: diagnose a finished (or killed) run from its logs.

Exit codes: 0 healthy (or warnings only), 1 findings of error severity, 2 input error or no
data to judge. Imports no torch: parsers, detectors and renderers are plain Python.

Files of several runs (a `runs/` folder, unrelated logs) give one verdict per run; the exit
code is 1 when any run is sick, else 2 when any had no data, else 0. `-` reads stdin."""

# No `from __future__ import annotations`: Typer reads the command's parameters from its
# annotations, and strings it would have to compile one by one (~2 ms of a cold start).
import gc
from enum import Enum
from pathlib import Path
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


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def postmortem(
    # hidden: help would print the argument's raw type (<list[Path]>); the docstring names it.
    files: Annotated[list[Path], typer.Argument(metavar="FILE", hidden=True)],
    config: Annotated[
        Path | None, typer.Option(metavar="FILE", help="The run's training config.")
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", metavar="text|json", help="text or json.")
    ] = OutputFormat.text,
    plot: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write curves to a .png or .html.")
    ] = None,
    format_in: FormatIn = None,
    accumulation: Accumulation = None,
    vocab_size: VocabSize = None,
    logging_steps: LoggingSteps = None,
    key_map: KeyMap = None,
    same_run: Annotated[
        bool,
        typer.Option(
            "--same-run", help="All the files are one run: merge them, whatever they hold."
        ),
    ] = False,
) -> None:
    """Diagnose a finished or killed run from its logs.

    FILE: log files of one run (text/tqdm, Hugging Face stdout or trainer_state.json,
    TensorBoard, Lightning CSV, JSON lines, events.jsonl) or a run directory. Prints a
    verdict, the timeline of findings and the symptom -> cause -> fix chains.

    Exit 0: healthy or warnings only; 1: errors; 2: bad input or nothing to judge.
    """
    # Imported here, not at the top: `doctor --help` imports every command's module to list
    # it, and should not pay for the detectors and the report.
    from distill_doctor.postmortem.analysis import analyze
    from distill_doctor.postmortem.keymap import parse_key_map
    from distill_doctor.postmortem.parsers import ParseOptions
    from distill_doctor.postmortem.report import build_report
    from distill_doctor.postmortem.run_config import load_run_config, run_facts
    from distill_doctor.postmortem.runs import group_runs, runs_exit_code

    if not gc.isenabled():
        # cli.main started this report without the cyclic collector; logs of any length are
        # read from here, so it is back on. Frozen first: the start's objects all live to the
        # end, and the first collection would otherwise scan every one of them.
        gc.freeze()
        gc.enable()
    if plot is not None and plot.suffix.lower() not in (".png", ".html"):
        raise InputError(f"--plot {plot}: give a file name ending in .png or .html.")
    run_config = load_run_config(config) if config is not None else None
    options = ParseOptions(
        accumulation=accumulation or (run_config.accumulation if run_config else None),
        logging_steps=logging_steps,
        key_map=parse_key_map(key_map or []),
    )
    runs = group_runs(files, options, format_in, same_run)
    if plot is not None and len(runs) > 1:
        raise InputError(f"--plot: the files hold {len(runs)} runs; plot one run at a time.")
    reports = []
    for run in runs:
        analysis = analyze(run.files, run_facts(run_config, vocab_size), options, format_in)
        reports.append(build_report(analysis, run_config))
    if plot is not None:
        from distill_doctor.render.plot import write_plot

        write_plot(reports[0], plot)
    if output is OutputFormat.json:
        from distill_doctor.render.json import render_json

        documents = [render_json(r.timeline, **r.summary()) for r in reports]
        typer.echo(documents[0] if len(documents) == 1 else runs_json(runs, documents))
    else:
        from rich.console import Console

        from distill_doctor.render.report_text import print_report

        console = Console(highlight=False, emoji=False)  # log text is not markup
        for number, (run, report) in enumerate(zip(runs, reports, strict=True), 1):
            if len(runs) > 1:
                console.rule(f"run {number} of {len(runs)}: {run.name}")
            print_report(report, console)
    if plot is not None:
        # stderr: a JSON document on stdout stays one parsable object.
        typer.echo(f"plot written to {plot.resolve()}", err=True)
    raise typer.Exit(runs_exit_code([r.exit_code for r in reports]))


def runs_json(runs: list, documents: list[str]) -> str:
    """Several runs: `{"runs": [{"run": name, ...one run's document}, ...]}`."""
    import json

    combined = [
        {"run": run.name, **json.loads(document)}
        for run, document in zip(runs, documents, strict=True)
    ]
    return json.dumps({"runs": combined}, indent=2)
