"""The bundled demo under `torchrun` on CPU (gloo): 2 ranks against 1 process with the same
global batch, and how long a job takes to end when one rank is SIGKILLed.

Runs the real commands in fresh interpreters: `doctor train` with batch_size 8, then
`torchrun --standalone --nproc-per-node 2 -m distill_doctor train` with batch_size 4 (2 x 4 =
8), both for --steps optimizer steps of the shipped demo pair. Prints the largest relative
difference of the per-step loss and gradient norm between the two (target: below 1e-5, float
rounding), the final eval CE of each, their wall times and the ratio (on a 2-core machine two
ranks share the cores: expect no speed-up), then the seconds from SIGKILL of rank 1 to the
job's exit (target: well under the 600 s collective timeout; gloo sees the dead peer at once).
`--json` prints the same numbers as JSON.

    python benchmarks/distributed_demo.py [--steps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def train_command(run_dir: Path, batch_size: int, steps: int, ranks: int) -> list[str]:
    launcher = TORCHRUN if ranks > 1 else [sys.executable]
    return launcher + [
        "-m", "distill_doctor", "train", "--run-dir", str(run_dir), "--max-steps", str(steps),
        "--set", f"batch_size={batch_size}", "--set", "logging_steps=1",
        "--set", "eval_max_batches=4",
    ]  # fmt: skip


def timed_run(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == kind]


def max_relative_difference(a: list[dict], b: list[dict], key: str) -> float:
    return max(abs(x[key] - y[key]) / max(abs(y[key]), 1e-12) for x, y in zip(a, b, strict=True))


def rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if parent == launcher.pid and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    sys.exit(f"no rank {rank} under the launcher")


def seconds_to_exit_after_kill(run_dir: Path, steps: int) -> float:
    """SIGKILL rank 1 once step 2 is logged; seconds until torchrun has exited."""
    command = train_command(run_dir, 4, steps, ranks=2) + ["--inject", "straggler"]
    launcher = subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    log = run_dir / "events.jsonl"
    while not (log.exists() and any(e["step"] >= 2 for e in events(run_dir, "metrics"))):
        if launcher.poll() is not None:
            sys.exit("the run ended before rank 1 could be killed")
        time.sleep(0.05)
    os.kill(rank_pid(launcher, 1), signal.SIGKILL)
    killed = time.perf_counter()
    launcher.wait()
    return time.perf_counter() - killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        one, two, killed = (Path(folder) / name for name in ("one", "two", "killed"))
        wall_one = timed_run(train_command(one, 8, args.steps, ranks=1))
        wall_two = timed_run(train_command(two, 4, args.steps, ranks=2))
        m1, m2 = events(one, "metrics"), events(two, "metrics")
        result = {
            "steps": args.steps,
            "loss_max_rel_diff": max_relative_difference(m2, m1, "loss"),
            "grad_norm_max_rel_diff": max_relative_difference(m2, m1, "grad_norm"),
            "eval_ce_one_process": events(one, "eval")[-1]["eval_ce"],
            "eval_ce_two_ranks": events(two, "eval")[-1]["eval_ce"],
            "wall_s_one_process": wall_one,
            "wall_s_two_ranks": wall_two,
            "wall_ratio_two_over_one": wall_two / wall_one,
            "exit_s_after_sigkill": seconds_to_exit_after_kill(killed, 200),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"demo, {args.steps} optimizer steps, global batch 8: 1 process vs 2 ranks (gloo)")
    print(f"  loss, max relative difference per step:      {result['loss_max_rel_diff']:.2e}")
    print(f"  grad norm, max relative difference per step: {result['grad_norm_max_rel_diff']:.2e}")
    print(
        f"  eval CE after: {result['eval_ce_one_process']:.4f} (1 process), "
        f"{result['eval_ce_two_ranks']:.4f} (2 ranks)"
    )
    print(
        f"  wall: {wall_one:.1f} s (1 process), {wall_two:.1f} s (2 ranks): "
        f"ratio {result['wall_ratio_two_over_one']:.2f}"
    )
    print(f"rank 1 SIGKILLed: the job exited {result['exit_s_after_sigkill']:.1f} s later")


if __name__ == "__main__":
    main()
