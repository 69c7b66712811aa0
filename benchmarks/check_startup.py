"""Cold-start cost of `doctor check` against the floor of any Typer + Rich CLI.

Runs, in fresh interpreters and alternating so that disk caches favour none:
    typer-rich app: a minimal Typer CLI whose one command prints a line through a Rich Console
                    (what any Typer + Rich tool pays before doing its own work): the target
    bare imports:   python -c "import typer, rich" (typer does not even load rich.console)
    check:          python -m distill_doctor check configs/seed_broken.json --gpu P100
and prints the median wall and CPU time of each and the ratios of check to both baselines
(target: under 3x the Typer + Rich app, the issue's budget for a linter that imports no
torch). `--json` prints the same numbers as JSON.

    python benchmarks/check_startup.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
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
    "typer_rich_app": [sys.executable, "-c", TYPER_RICH_APP],
    "bare_imports": [sys.executable, "-c", "import typer, rich"],
}
CHECK = [
    sys.executable,
    "-m",
    "distill_doctor",
    "check",
    "configs/seed_broken.json",
    "--gpu",
    "P100",
]


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time is the steadier number on a shared
    machine, wall time the one a user feels."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # 1 is a finding, not a failure
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(runs: int) -> dict[str, float]:
    commands = {**BASELINES, "check": CHECK}
    for command in commands.values():
        timed(command)  # warm the file cache for each, untimed
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(timed(command))
    result: dict[str, float] = {"runs": runs, "target_ratio": TARGET_RATIO}
    for kind, index in (("wall", 0), ("cpu", 1)):
        medians = {name: statistics.median(s[index] for s in samples[name]) for name in commands}
        for name, seconds in medians.items():
            result[f"{name}_{kind}_s"] = round(seconds, 4)
        for baseline in BASELINES:
            result[f"{kind}_ratio_vs_{baseline}"] = round(medians["check"] / medians[baseline], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result))
        return
    for kind in ("wall", "cpu"):
        app, bare = result[f"typer_rich_app_{kind}_s"], result[f"bare_imports_{kind}_s"]
        check = result[f"check_{kind}_s"]
        ratio = result[f"{kind}_ratio_vs_typer_rich_app"]
        verdict = "within" if ratio < TARGET_RATIO else "OVER"
        print(
            f"{kind:4s}  typer+rich app {app * 1000:6.1f} ms   bare imports {bare * 1000:6.1f} ms"
            f"   doctor check {check * 1000:6.1f} ms   ratio {ratio:.2f}x vs the app "
            f"({verdict} {TARGET_RATIO:g}x), {result[f'{kind}_ratio_vs_bare_imports']:.2f}x "
            "vs bare imports"
        )
    print(f"medians of {result['runs']} alternating runs each")


if __name__ == "__main__":
    main()
