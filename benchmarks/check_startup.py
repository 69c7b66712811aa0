"""Cold-start cost of `doctor check` against the floor of any Typer + Rich CLI.

Runs, in fresh interpreters and alternating so that disk caches favour neither:
    baseline: python -c "import typer, rich"
    check:    python -m distill_doctor check configs/seed_broken.json --gpu P100
and prints the median wall time of each and their ratio (target: under 3x, the issue's
budget for a linter that imports no torch). `--json` prints the same numbers as JSON.

    python benchmarks/check_startup.py [--runs 15] [--json]
"""

from __future__ import annotations

import argparse
import json
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


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1 is a finding, not a failure
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    return elapsed


def measure(runs: int) -> dict[str, float]:
    wall_time(BASELINE), wall_time(CHECK)  # warm the file cache for both, untimed
    baseline, check = [], []
    for _ in range(runs):
        baseline.append(wall_time(BASELINE))
        check.append(wall_time(CHECK))
    base, chk = statistics.median(baseline), statistics.median(check)
    return {
        "runs": runs,
        "baseline_s": round(base, 4),
        "check_s": round(chk, 4),
        "ratio": round(chk / base, 2),
        "target_ratio": TARGET_RATIO,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result))
        return
    print(f"python -c 'import typer, rich'   median {result['baseline_s'] * 1000:7.1f} ms")
    print(f"doctor check seed_broken.json    median {result['check_s'] * 1000:7.1f} ms")
    verdict = "within" if result["ratio"] < TARGET_RATIO else "OVER"
    print(
        f"ratio {result['ratio']:.2f}x ({verdict} the {TARGET_RATIO:g}x target, "
        f"{result['runs']} runs each)"
    )


if __name__ == "__main__":
    main()
