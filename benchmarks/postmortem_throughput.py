"""Throughput and memory of `doctor postmortem` on a seed-style log, beside `grep -c loss`.

Generates a log like the seed's (per-epoch tqdm bars redrawn with `\\r` at every micro-batch,
ANSI colours, loss/lr postfixes updated at each optimizer step of gradient accumulation 16,
`Step N:` and `[Eval]` lines, clamping warnings), then times, on the same file:
  - `grep -c loss` (the floor: one pass of a C program that does no parsing),
  - `doctor postmortem`'s parse + detect, in process (analysis only, no rendering),
and prints MB/s for both and their ratio, plus the peak RSS of the postmortem at the full size
and at a quarter of it (each in a fresh process) to show memory does not grow with the log.

    python benchmarks/postmortem_throughput.py [--size-mb 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ACCUMULATION = 16
BATCHES_PER_EPOCH = 25_000
EVAL_EVERY = 1000  # optimizer steps


def _epoch_text(epoch: int, first_step: int) -> str:
    """One epoch of log: a bar redrawn per micro-batch, eval lines, an occasional warning."""
    parts = [f"Epoch {epoch}/3 starting\n"]
    redraws = []
    step = first_step
    postfix = ""
    for n in range(1, BATCHES_PER_EPOCH + 1):
        if n % ACCUMULATION == 0:
            step += 1
            loss = 10 + 12 * math.exp(-step / 3000) + 0.3 * math.sin(step * 1.7)
            lr = 3e-5 * min(1.0, step / 500)
            postfix = f", loss={loss:.4f}, lr={lr:.2e}"
        pct = n * 100 // BATCHES_PER_EPOCH
        redraws.append(
            f"\x1b[32mEpoch {epoch}\x1b[0m: {pct:3d}%|{'#' * (pct // 10):<10}| "
            f"{n}/{BATCHES_PER_EPOCH} [{n // 150:02d}:{n % 60:02d}<1:10:00,  2.50it/s{postfix}]"
        )
        if n % ACCUMULATION == 0 and step % EVAL_EVERY == 0:
            parts.append("\r".join(redraws) + "\n")
            redraws = []
            ev = 9 + 11 * math.exp(-step / 3000)
            parts.append(f"Step {step}: loss={ev:.2f}, kd={ev * 0.3:.2f}, feature={ev * 0.1:.2f}\n")
            parts.append(f"[Eval] loss: {ev:.2f} | perplexity: {math.exp(ev / 4):.2f}\n")
        if n % 7919 == 0:
            parts.append("\r".join(redraws) + "\n")
            redraws = []
            parts.append("[Warning] kd_loss produced non-finite value (nan); clamping to zero.\n")
    parts.append("\r".join(redraws) + "\n")
    return "".join(parts)


def generate(path: Path, size_bytes: int) -> None:
    """Write the log (kept for reuse when one of the same size is already there)."""
    if path.exists() and path.stat().st_size >= size_bytes:
        return
    with open(path, "w", encoding="utf-8") as out:
        out.write("[Scheduler] Optimizer steps: 4,687\n[Scheduler] Warmup steps: 468 (10.0%)\n")
        out.write(f"gradient_accumulation_steps: {ACCUMULATION}\n")
        written, epoch, step = 0, 1, 0
        while written < size_bytes:
            text = _epoch_text(epoch, step)
            out.write(text)
            written += len(text.encode())
            epoch, step = epoch + 1, step + BATCHES_PER_EPOCH // ACCUMULATION


def time_grep(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["grep", "-c", "loss", str(path)], check=False, capture_output=True)
    return time.perf_counter() - start


def worker(path: Path) -> dict[str, float]:
    """Parse + detect one file in this process: seconds, records, peak RSS."""
    from distill_doctor.postmortem.analysis import analyze

    start = time.perf_counter()
    analysis = analyze([path])
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "records": analysis.records, "peak_rss_mb": peak_kib / 1024}


def run_worker(path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def measure(size_mb: int, folder: Path) -> dict[str, object]:
    big, small = folder / f"seed_{size_mb}mb.log", folder / f"seed_{size_mb // 4}mb.log"
    generate(big, size_mb * 1024 * 1024)
    generate(small, size_mb * 1024 * 1024 // 4)
    mb = big.stat().st_size / 1e6
    grep_s = time_grep(big)
    full = run_worker(big)
    quarter = run_worker(small)
    return {
        "file_mb": round(mb, 1),
        "grep_mb_per_s": round(mb / grep_s, 1),
        "postmortem_mb_per_s": round(mb / full["seconds"], 1),
        "ratio_postmortem_to_grep": round(grep_s / full["seconds"], 3),
        "records": full["records"],
        "peak_rss_mb_full": round(full["peak_rss_mb"], 1),
        "peak_rss_mb_quarter": round(quarter["peak_rss_mb"], 1),
        "quarter_file_mb": round(small.stat().st_size / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    result = measure(args.size_mb, args.dir)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"seed-style log: {result['file_mb']} MB, {result['records']:,} records")
    print(f"grep -c loss:        {result['grep_mb_per_s']:>8} MB/s")
    print(f"doctor postmortem:   {result['postmortem_mb_per_s']:>8} MB/s (parse + detect)")
    print(f"ratio postmortem/grep: {result['ratio_postmortem_to_grep']}")
    print(
        f"peak RSS: {result['peak_rss_mb_full']} MB at {result['file_mb']} MB, "
        f"{result['peak_rss_mb_quarter']} MB at {result['quarter_file_mb']} MB"
    )


if __name__ == "__main__":
    main()
