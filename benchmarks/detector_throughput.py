"""The detector path of `doctor postmortem` on a 1,000,000-record JSONL log (issue 8).

Generates a healthy HF-style JSON-lines log (loss, learning_rate, grad_norm, epoch per step,
an eval every 1,000 steps; loss (a power law) and grad norm decaying with per-batch noise),
then, in fresh processes, times on the same file:
  - parse only: the jsonl parser's records, consumed and dropped (the floor of any analysis);
  - `analyze`: parse + merge + DetectorSuite + the analysis (series, curves), no rendering;
and prints both, the detector path (their difference), records per second, the findings (a
healthy log should give none), and the peak RSS at the full size and at a quarter of it (each
in a fresh process) to show memory does not grow with the log. CPU time of the worker process
is reported beside wall time: on a shared machine it is the steadier of the two.

    python benchmarks/detector_throughput.py [--records 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import subprocess
import sys
import time
from pathlib import Path


def generate(path: Path, records: int) -> None:
    """Write the log (kept for reuse when one of the same size is already there)."""
    if path.exists():
        return
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as out:
        for step in range(1, records + 1):
            # A power-law decay: still improving at the end, as long healthy runs do.
            loss = (1.5 + 8 / math.sqrt(1 + step / 2000)) * math.exp(rng.gauss(0, 0.05))
            lr = 5e-5 * min(1.0, step / 2000) * max(0.0, (records - step) / records)
            grad = (0.5 + 3 / (1 + step / 5000)) * math.exp(rng.gauss(0, 0.2))
            epoch = round(step / records * 3, 4)
            line = {"step": step, "loss": round(loss, 5), "learning_rate": lr}
            line.update({"grad_norm": round(grad, 4), "epoch": epoch})
            out.write(json.dumps(line) + "\n")
            if step % 1000 == 0:
                evaluation = {"step": step, "eval_loss": round(loss * 1.05, 4), "epoch": epoch}
                out.write(json.dumps(evaluation) + "\n")


def worker(path: Path, mode: str) -> dict[str, object]:
    """Parse only, or the whole analysis, of one file in this process."""
    from distill_doctor.postmortem.analysis import analyze, open_sources
    from distill_doctor.postmortem.parsers import ParseOptions

    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "parse":
        records = sum(1 for _ in open_sources([path], ParseOptions())[1])
        findings: list[str] = []
    else:
        analysis = analyze([path])
        records, findings = analysis.records, [f.id for f in analysis.findings]
    return {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "records": records,
        "findings": findings,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_worker(path: Path, mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(path), "--mode", mode],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def measure(records: int, folder: Path) -> dict[str, object]:
    big, small = folder / f"hf_{records}.jsonl", folder / f"hf_{records // 4}.jsonl"
    generate(big, records)
    generate(small, records // 4)
    parse = run_worker(big, "parse")
    full = run_worker(big, "analyze")
    quarter = run_worker(small, "analyze")
    path_cpu = full["cpu_s"] - parse["cpu_s"]
    path_wall = full["wall_s"] - parse["wall_s"]
    return {
        "records": full["records"],
        "file_mb": round(big.stat().st_size / 1e6, 1),
        "parse_wall_s": round(parse["wall_s"], 2),
        "parse_cpu_s": round(parse["cpu_s"], 2),
        "analyze_wall_s": round(full["wall_s"], 2),
        "analyze_cpu_s": round(full["cpu_s"], 2),
        "detector_path_wall_s": round(path_wall, 2),
        "detector_path_cpu_s": round(path_cpu, 2),
        "detector_path_us_per_record": round(1e6 * path_cpu / full["records"], 2),
        "records_per_s": round(full["records"] / full["wall_s"]),
        "findings_on_healthy_log": full["findings"],
        "peak_rss_mb_full": round(full["peak_rss_mb"], 1),
        "peak_rss_mb_quarter": round(quarter["peak_rss_mb"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="analyze", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.mode)))
        return
    result = measure(args.records, args.dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"HF-style JSONL: {result['file_mb']} MB, {result['records']:,} records")
    print(f"parse only:      {result['parse_wall_s']:>7} s wall, {result['parse_cpu_s']} s CPU")
    print(
        f"analyze:         {result['analyze_wall_s']:>7} s wall, {result['analyze_cpu_s']} s CPU"
        f" ({result['records_per_s']:,} records/s)"
    )
    print(
        f"detector path:   {result['detector_path_wall_s']:>7} s wall, "
        f"{result['detector_path_cpu_s']} s CPU ({result['detector_path_us_per_record']} us "
        "per record: suite + merge + analysis)"
    )
    print(f"findings on this healthy log: {result['findings_on_healthy_log'] or 'none'}")
    print(
        f"peak RSS: {result['peak_rss_mb_full']} MB at {result['records']:,} records, "
        f"{result['peak_rss_mb_quarter']} MB at a quarter"
    )


if __name__ == "__main__":
    main()
