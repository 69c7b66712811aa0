"""CPU time of the chunked KD loss (forward + backward) at several chunk sizes, in one run.

The sizes are alternated `--repeats` times on the same inputs, so the box's load drifts over
all of them alike; each size reports its best CPU time and that over the floor's best (the
floor of `kd_loss.py`: one pass that reads both logits and writes a fresh gradient-sized
tensor). CPU, fp32, one thread, T = 2, the first sequence 1/8 padded, as in `kd_loss.py`.

    python benchmarks/kd_chunk_rows.py [--shape 8x512x50257] [--kinds forward_kl,jsd]
        [--rows 3,5,7,10,16] [--top-k K (top-k tail KD)] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from kd_loss import TEMPERATURE, chunked, floor_pass, inputs

from distill_doctor.trainer.kd_chunked import KDOptions


def cpu_seconds(step) -> float:
    start = time.process_time()
    step()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="8x512x50257", help="BxTxV")
    parser.add_argument("--kinds", default="forward_kl,jsd")
    parser.add_argument("--rows", default="3,5,7,10,16", help="chunk rows to compare")
    parser.add_argument("--top-k", type=int, help="top-k tail KD over K tokens (default: full)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = tuple(int(n) for n in args.shape.split("x"))
    student, teacher, labels = inputs(shape, torch.device("cpu"), torch.float32)
    sizes = [int(n) for n in args.rows.split(",")]
    best: dict[tuple[str, int], float] = {}
    floor = float("inf")
    for _ in range(args.repeats):
        floor = min(floor, cpu_seconds(lambda: floor_pass(student, teacher)))
        for kind in args.kinds.split(","):
            for rows in sizes:
                loss = chunked(KDOptions(kind, TEMPERATURE, top_k=args.top_k), rows)

                def step(loss=loss) -> None:
                    loss(student, teacher, labels).backward()
                    student.grad = None

                seconds = cpu_seconds(step)
                best[kind, rows] = min(best.get((kind, rows), float("inf")), seconds)
    results = [
        {
            "kind": kind,
            "chunk_rows": rows,
            "cpu_ms": round(s * 1e3, 1),
            "over_floor": round(s / floor, 2),
        }  # fmt: skip
        for (kind, rows), s in best.items()
    ]
    if args.json:
        floor_ms = round(floor * 1e3, 1)
        found = {
            "shape": args.shape,
            "top_k": args.top_k,
            "floor_cpu_ms": floor_ms,
            "rows": results,
        }
        print(json.dumps(found, indent=1))
        return
    mode = f"top-k tail, k={args.top_k}" if args.top_k else "full vocabulary"
    print(f"{args.shape}, {mode}, CPU fp32, 1 thread: floor {floor * 1e3:.0f} ms (best CPU time)")
    for r in results:
        print(f"{r['kind']:10s} chunk_rows {r['chunk_rows']:4d}: {r['cpu_ms']:8.0f} ms, "
              f"{r['over_floor']:.2f}x the floor")  # fmt: skip


if __name__ == "__main__":
    main()
