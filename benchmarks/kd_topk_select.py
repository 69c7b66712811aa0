"""The teacher's top k of one KD chunk: `top_k_select.top_k` (candidate blocks) against
torch.topk, CPU time, on fresh rows as the loss meets them.

Each round walks all the rows in chunks of --rows (the top-k loss's default chunk at V =
50,257 is 20 rows), once per method, the methods alternated round by round; the ratio is of
each method's best round, so a burst of load on a shared box hits both sides alike.

    python benchmarks/kd_topk_select.py [--ks 16,64,256,1024] [--rows 20] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from distill_doctor.trainer.top_k_select import top_k

VOCAB = 50257


def best_round(select, logits: torch.Tensor, k: int, rows: int, rounds: int) -> float:
    """Best CPU seconds of `rounds` walks over `logits`, per chunk of `rows`."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for first in range(0, logits.shape[0], rows):
            select(logits[first : first + rows], k)
        best = min(best, time.process_time() - start)
    return best / -(-logits.shape[0] // rows)


def torch_topk(x: torch.Tensor, k: int):
    return x.topk(k, -1, sorted=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="16,64,256,1024")
    parser.add_argument("--rows", type=int, default=20, help="rows per chunk")
    parser.add_argument("--chunks", type=int, default=40, help="chunks per round")
    parser.add_argument("--vocab", type=int, default=VOCAB)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    # 40 chunks of 20 rows: 160 MB, far beyond the caches, as a batch's logits are
    logits = torch.randn(args.rows * args.chunks, args.vocab, generator=g) * 3
    results = []
    for k in (int(k) for k in args.ks.split(",")):
        times = {"torch_topk": float("inf"), "top_k_select": float("inf")}
        for _ in range(args.rounds):  # alternated: both see the same load
            for name, select in (("torch_topk", torch_topk), ("top_k_select", top_k)):
                times[name] = min(times[name], best_round(select, logits, k, args.rows, 1))
        results.append(
            {
                "k": k,
                "rows": args.rows,
                "V": args.vocab,
                "torch_topk_us": round(times["torch_topk"] * 1e6),
                "top_k_select_us": round(times["top_k_select"] * 1e6),
                "ratio": round(times["top_k_select"] / times["torch_topk"], 2),
            }
        )
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"CPU time per chunk of {args.rows} x {args.vocab} (best of {args.rounds} rounds)")
    for r in results:
        print(
            f"k={r['k']:5d}  torch.topk {r['torch_topk_us']:6d} us  top_k_select"
            f" {r['top_k_select_us']:6d} us  ratio {r['ratio']:.2f}x"
        )


if __name__ == "__main__":
    main()
