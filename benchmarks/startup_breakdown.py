"""Where a cold `doctor check` and `doctor postmortem` spend their start (issue 8): the phases
of `check_startup.py`'s two commands, each timed by CPU time in a fresh interpreter, in the
order the command pays them, so the part any Typer + Rich tool pays is apart from the
doctor's own.

Phases (each one's CPU milliseconds, median of --runs fresh processes), against the baseline
of check_startup.py (`python -c "import typer, rich"`, its whole process):
    python             the interpreter's start and exit (the process's CPU time less the
                       phases below; the doctor's report commands skip the exit's teardown)
    typer + rich       `import typer, rich`
    typer coercion     pydantic, which Typer imports to coerce the first option, and one
                       TypeAdapter: every Typer command with an option pays it
    rich console       rich.console (what a Typer + Rich app prints with)
    cli + options      the doctor's CLI, the command's module and Typer's adapters for its
                       options
    engine imports     check: config schema, dialects, rules; postmortem: parsers, detectors
    work               check: load, rule and render the seed config; postmortem: analyse and
                       render the seed log
The first four are what the minimal Typer + Rich app of check_startup.py pays too: 3x the
baseline, the issue's target, leaves the doctor what is left after them. From `typer coercion`
on, the probe runs without the cyclic collector, as `cli.main` runs a report command (so the
doctor's process pays less for those four than the app does).

    python benchmarks/startup_breakdown.py [--runs 9] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROBE = """
import io, os, sys, time
from contextlib import redirect_stdout
from pathlib import Path
marks = [time.process_time()]
def mark():
    marks.append(time.process_time())
import typer, rich
mark()
import gc
gc.disable()  # as cli.main starts a report command (its import of typer comes first)
import typer._adapters
from pydantic import TypeAdapter
TypeAdapter(str)
mark()
import rich.console
mark()
from distill_doctor.cli import app
import typer.main
group = typer.main.get_command(app)
command = group.get_command(None, sys.argv[1])
for param in command.params:
    param.get_runtime_param()
mark()
if sys.argv[1] == "check":
    import distill_doctor.config.context, distill_doctor.config.coverage, distill_doctor.rules
    import distill_doctor.render.text
    args = ["configs/seed_broken.json", "--gpu", "P100"]
else:
    import distill_doctor.postmortem.analysis, distill_doctor.postmortem.report
    import distill_doctor.render.report_text
    args = ["tests/postmortem/fixtures/seed_broken.log"]
mark()
with redirect_stdout(io.StringIO()):
    try:
        group.main([sys.argv[1], *args], prog_name="doctor")
    except SystemExit:
        pass
mark()
print(" ".join(str(b - a) for a, b in zip(marks, marks[1:])), flush=True)
os._exit(0)  # as `doctor check` and `doctor postmortem` end: without the teardown
"""
PHASES = (
    "python",
    "typer_rich",
    "typer_coercion",
    "rich_console",
    "cli_options",
    "engine_imports",
    "work",
)
COMMANDS = ("check", "postmortem")


def child_cpu(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(CPU seconds of the child, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    return cpu, done.stdout


def run_probe(command: str, env: dict[str, str]) -> list[float]:
    total, out = child_cpu([sys.executable, "-c", PROBE, command], env)
    phases = [float(x) for x in out.split()]
    return [total - sum(phases), *phases]


def run_baseline(env: dict[str, str]) -> float:
    return child_cpu([sys.executable, "-c", "import typer, rich"], env)[0]


def measure(runs: int, pycache: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache  # time the start from bytecode, as an install does
    run_baseline(env)
    for command in COMMANDS:
        run_probe(command, env)  # write the bytecode and warm the file cache, untimed
    samples: dict[str, list[list[float]]] = {command: [] for command in COMMANDS}
    baselines = []
    for _ in range(runs):
        baselines.append(run_baseline(env))
        for command in COMMANDS:
            samples[command].append(run_probe(command, env))
    baseline = statistics.median(baselines) * 1e3
    result: dict[str, object] = {"runs": runs, "baseline_ms": round(baseline, 1)}
    for command, rows in samples.items():
        medians = [statistics.median(row[i] for row in rows) * 1e3 for i in range(len(PHASES))]
        result[command] = {
            "ms": dict(zip(PHASES, (round(m, 1) for m in medians), strict=True)),
            "x_baseline": dict(zip(PHASES, (round(m / baseline, 2) for m in medians), strict=True)),
            "app_part_x_baseline": round(sum(medians[:4]) / baseline, 2),
            "total_x_baseline": round(sum(medians) / baseline, 2),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="doctor-pycache-") as pycache:
        result = measure(args.runs, pycache)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"CPU ms per phase, median of {args.runs} fresh processes; x: times the baseline, "
        f"`python -c 'import typer, rich'` ({result['baseline_ms']} ms)"
    )
    for command in COMMANDS:
        row = result[command]
        assert isinstance(row, dict)
        print(f"doctor {command}:")
        for phase in PHASES:
            print(f"  {phase:15s} {row['ms'][phase]:7.1f} ms  {row['x_baseline'][phase]:5.2f}x")
        print(
            f"  typer + rich app part {row['app_part_x_baseline']}x, "
            f"whole start {row['total_x_baseline']}x the baseline"
        )


if __name__ == "__main__":
    main()
