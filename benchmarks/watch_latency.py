"""How fast does `doctor watch` show a fault after the log line is written, and what does it
cost while the run is quiet?

latency: a real `doctor watch` process follows a log (a file, then a run folder); once it has
read the history, a NaN loss line is appended and timed until its finding is printed (the
median and worst of --trials). Goal: under 1 s.
idle CPU: the same processes left with nothing to read for --idle seconds; their user +
system CPU time over that wall time (Linux /proc). Goal: under 1%.

    python benchmarks/watch_latency.py [--trials 5] [--idle 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from distill_doctor.watchdog.follow import SCAN_SECONDS
from distill_doctor.watchdog.tail import POLL_SECONDS

HISTORY = "".join(f"step {s} | lr: 1e-3 | loss: {3 - s / 1000:.4f}\n" for s in range(1, 200))
LIVE = "read the history"  # the watch's line once it follows live
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[tuple[float, str]]:
    """Each line the process prints, with the time it came."""
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put((time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()
    return lines


def wait_for(lines: queue.Queue[tuple[float, str]], text: str, seconds: float = 60) -> float:
    deadline = time.monotonic() + seconds
    while True:
        at, line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        if text in line:
            return at


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_watch(target: Path, log: Path, idle: float) -> tuple[float, float]:
    """(seconds from the NaN line written to its finding shown, idle CPU %)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "distill_doctor", "watch", str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        lines = lines_of(process)
        wait_for(lines, LIVE)
        time.sleep(SCAN_SECONDS)  # past the first folder scans: a steady state
        written = time.monotonic()
        with open(log, "a") as file:
            file.write("step 200 | lr: 1e-3 | loss: nan\n")
        shown = wait_for(lines, "nonfinite-loss")
        time.sleep(1.0)
        before, started = cpu_seconds(process.pid), time.monotonic()
        time.sleep(idle)
        used = cpu_seconds(process.pid) - before
        return shown - written, 100 * used / (time.monotonic() - started)
    finally:
        process.terminate()
        process.wait()


def folder(root: Path) -> tuple[Path, Path]:
    """An HF-like output folder: a tee'd log, 20 checkpoints, weights (never logs)."""
    run = root / "out"
    for number in range(50, 1050, 50):
        checkpoint = run / f"checkpoint-{number}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "model.safetensors").write_bytes(b"\0" * 1024)
    log = run / "train.log"
    log.write_text(HISTORY)
    return run, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds measured")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"file": [], "folder": []}
    for trial in range(args.trials):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            log = root / "train.log"
            log.write_text(HISTORY)
            results["file"].append(one_watch(log, log, args.idle if trial == 0 else 0.1))
            run, run_log = folder(root)
            results["folder"].append(one_watch(run, run_log, args.idle if trial == 0 else 0.1))
    latencies = [latency for kind in results.values() for latency, _ in kind]
    report = {
        "latency_ms": round(1000 * statistics.median(latencies), 1),
        "latency_ms_max": round(1000 * max(latencies), 1),
        "latency_ms_file": round(1000 * statistics.median(r[0] for r in results["file"]), 1),
        "latency_ms_folder": round(1000 * statistics.median(r[0] for r in results["folder"]), 1),
        "idle_cpu_pct": round(max(results["file"][0][1], results["folder"][0][1]), 3),
        "idle_cpu_pct_file": round(results["file"][0][1], 3),
        "idle_cpu_pct_folder": round(results["folder"][0][1], 3),
        "idle_seconds": args.idle,
        "trials": args.trials,
        "poll_seconds": POLL_SECONDS,
        "scan_seconds": SCAN_SECONDS,
        "goals": {"latency_ms": "< 1000", "idle_cpu_pct": "< 1"},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"write-to-shown latency: median {report['latency_ms']} ms, worst "
        f"{report['latency_ms_max']} ms over {2 * args.trials} watches (file "
        f"{report['latency_ms_file']} ms, folder {report['latency_ms_folder']} ms); goal < 1000"
    )
    print(
        f"idle CPU over {args.idle:g}s: file {report['idle_cpu_pct_file']}%, folder "
        f"{report['idle_cpu_pct_folder']}% (poll {POLL_SECONDS}s, scan {SCAN_SECONDS}s); "
        "goal < 1%"
    )


if __name__ == "__main__":
    main()
