"""The bundled demo against its budget: `doctor train` (no config) must finish in about 2
minutes on a 2-core CPU, and the student must really learn from a teacher that is really
better.

Runs the real command once, in a fresh interpreter, into a temporary run directory, and prints
its wall and CPU time, the ratio of the wall time to the 120 s budget (target: <= 1.0), and the
held-out CE of the teacher and of the student before and after, read back from the run's own
events.jsonl. `--json` prints the same numbers as JSON.

    python benchmarks/train_demo.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 120.0


def run_demo(run_dir: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `doctor train --run-dir run_dir`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-m", "distill_doctor", "train", "--run-dir", str(run_dir)]
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"doctor train failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def eval_losses(run_dir: Path) -> dict[str, float]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    evals = [e for e in map(json.loads, lines) if e["type"] == "eval"]
    return {
        "teacher_ce": evals[0]["teacher_ce"],
        "student_ce_before": evals[0]["eval_ce"],
        "student_ce_after": evals[-1]["eval_ce"],
        "steps": evals[-1]["step"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "demo"
        wall, cpu = run_demo(run_dir)
        result = {
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
            "budget_s": BUDGET_S,
            "wall_over_budget": round(wall / BUDGET_S, 3),
            "cores": os.cpu_count(),
            **eval_losses(run_dir),
        }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"doctor train (demo, {result['steps']} steps, {result['cores']} cores): "
        f"{result['wall_s']} s wall, {result['cpu_s']} s CPU"
    )
    print(f"wall / {BUDGET_S:.0f} s budget: {result['wall_over_budget']:.2f} (target <= 1.0)")
    print(
        f"held-out CE: teacher {result['teacher_ce']:.3f} · student "
        f"{result['student_ce_before']:.3f} -> {result['student_ce_after']:.3f}"
    )


if __name__ == "__main__":
    main()
