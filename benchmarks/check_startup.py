"""Cold-start cost of `doctor check` and `doctor postmortem` against the floor of a Typer CLI.

Runs, in fresh interpreters and alternating so that disk caches favour none:
    bare imports:   python -c "import typer, rich" (typer does not even load rich.console):
                    the baseline of the target
    typer-rich app: a minimal Typer CLI whose one command prints a line through a Rich Console
                    (what any Typer + Rich tool pays before doing its own work), for scale
    check:          python -m distill_doctor check configs/seed_broken.json --gpu P100
    postmortem:     python -m distill_doctor postmortem tests/postmortem/fixtures/seed_broken.log
and prints the median wall and CPU time of each and the ratios of each command to both
baselines (target: under 3x the bare imports, for a linter and a log reader that import no
torch). `--json` prints the same numbers as JSON.

Every run may read and write compiled bytecode (in a temporary PYTHONPYCACHEPREFIX, even when
the caller sets PYTHONDONTWRITEBYTECODE): an installed package starts from its .pyc files, and
recompiling only this project's sources on every run would time the compiler, not the start.

    python benchmarks/check_startup.py [--runs 15] [--json]
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
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3.0
TYPER_RICH_APP = """
import typer
from rich.console import Console
app = typer.Typer()
@app.command()
def hello(name: str = "world") -> None:
    Console().print(f"[bold]hello[/] {name}")
app()
"""
BASELINES = {
    "bare_imports": [sys.executable, "-c", "import typer, rich"],
    "typer_rich_app": [sys.executable, "-c", TYPER_RICH_APP],
}
DOCTOR = [sys.executable, "-m", "distill_doctor"]
COMMANDS = {
    "check": [*DOCTOR, "check", "configs/seed_broken.json", "--gpu", "P100"],
    "postmortem": [*DOCTOR, "postmortem", "tests/postmortem/fixtures/seed_broken.log"],
}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time is the steadier number on a shared
    machine, wall time the one a user feels."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1 is a finding, not a failure
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(runs: int, pycache: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    commands = {**BASELINES, **COMMANDS}
    for command in commands.values():
        timed(command, env)  # warm the file cache and write the bytecode, untimed
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(timed(command, env))
    result: dict[str, float] = {"runs": runs, "target_ratio": TARGET_RATIO}
    for kind, index in (("wall", 0), ("cpu", 1)):
        medians = {name: statistics.median(s[index] for s in samples[name]) for name in commands}
        for name, seconds in medians.items():
            result[f"{name}_{kind}_s"] = round(seconds, 4)
        for command in COMMANDS:
            for baseline in BASELINES:
                ratio = medians[command] / medians[baseline]
                result[f"{command}_{kind}_ratio_vs_{baseline}"] = round(ratio, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="doctor-pycache-") as pycache:
        result = measure(args.runs, pycache)
    if args.json:
        print(json.dumps(result))
        return
    for kind in ("wall", "cpu"):
        bare, app = result[f"bare_imports_{kind}_s"], result[f"typer_rich_app_{kind}_s"]
        print(f"{kind:4s}  bare imports {bare * 1e3:6.1f} ms   typer+rich app {app * 1e3:6.1f} ms")
        for command in COMMANDS:
            ratio = result[f"{command}_{kind}_ratio_vs_bare_imports"]
            verdict = "within" if ratio < TARGET_RATIO else "OVER"
            print(
                f"      doctor {command:10s} {result[f'{command}_{kind}_s'] * 1000:6.1f} ms   "
                f"{ratio:.2f}x bare imports ({verdict} {TARGET_RATIO:g}x), "
                f"{result[f'{command}_{kind}_ratio_vs_typer_rich_app']:.2f}x the app"
            )
    print(f"medians of {result['runs']} alternating runs each")


if __name__ == "__main__":
    main()
