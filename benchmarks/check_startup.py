"""Cold-start cost of `doctor check` against the floor of any Typer + Rich CLI.

Runs, in fresh interpreters and alternating so that disk caches favour neither:
    baseline: python -c "import typer, rich"
    check:    python -m distill_doctor check configs/seed_broken.json --gpu P100
and prints the median wall and CPU time of each and their ratios (target: under 3x, the issue's
budget for a linter that imports no torch). `--json` prints the same numbers as JSON.

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
BASELINE = [sys.executable, "-c", "import typer, rich"]
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
    timed(BASELINE), timed(CHECK)  # warm the file cache for both, untimed
    samples: dict[str, list[tuple[float, float]]] = {"baseline": [], "check": []}
    for _ in range(runs):
        samples["baseline"].append(timed(BASELINE))
        samples["check"].append(timed(CHECK))
    result: dict[str, float] = {"runs": runs, "target_ratio": TARGET_RATIO}
    for name, index in (("wall", 0), ("cpu", 1)):
        base = statistics.median(s[index] for s in samples["baseline"])
        check = statistics.median(s[index] for s in samples["check"])
        result[f"baseline_{name}_s"] = round(base, 4)
        result[f"check_{name}_s"] = round(check, 4)
        result[f"{name}_ratio"] = round(check / base, 2)
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
    for name in ("wall", "cpu"):
        base, check = result[f"baseline_{name}_s"], result[f"check_{name}_s"]
        ratio = result[f"{name}_ratio"]
        verdict = "within" if ratio < TARGET_RATIO else "OVER"
        print(
            f"{name:4s}  import typer, rich {base * 1000:6.1f} ms   doctor check "
            f"{check * 1000:6.1f} ms   ratio {ratio:.2f}x ({verdict} {TARGET_RATIO:g}x)"
        )
    print(f"medians of {result['runs']} alternating runs each")


if __name__ == "__main__":
    main()
