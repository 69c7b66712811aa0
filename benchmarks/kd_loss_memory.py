"""Memory and time of the KD loss: full-vocabulary KL against top-k subset KD.

For N valid tokens and a vocabulary of V, each variant runs forward + backward on bf16 logits
(what autocast hands the loss) and reports the bytes autograd keeps for the backward pass (the
memory that lives from the loss to the end of backward, on any device: counted with
saved-tensor hooks, each storage once) and its median time. Ratios are against full-vocabulary
forward KL, measured in this one run. Top-k KD still normalises the student over the full
vocabulary, so it is not expected to be much cheaper: what to watch is that it costs no more
than full KD.

    python benchmarks/kd_loss_memory.py [--tokens 4096] [--vocab 32000] [--k 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch

from distill_doctor.trainer.losses import kd_sum, top_k_kd_sum


def variants(k: int) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    return {
        "full_forward_kl": lambda s, t: kd_sum(s, t, temperature=2.0),
        "full_jsd": lambda s, t: kd_sum(s, t, temperature=2.0, kind="jsd"),
        f"top{k}_tail": lambda s, t: top_k_kd_sum(s, t, k=k, mode="tail", temperature=2.0),
        f"top{k}_renormalize": lambda s, t: top_k_kd_sum(
            s, t, k=k, mode="renormalize", temperature=2.0
        ),
    }


def saved_for_backward(loss_fn, student: torch.Tensor, teacher: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd saves while building the loss's graph."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss_fn(student, teacher)
    return sum(storages.values())


def measure_one(loss_fn, tokens: int, vocab: int, device: torch.device, repeats: int) -> dict:
    generator = torch.Generator(device=device).manual_seed(0)
    shape = (tokens, vocab)
    student = torch.randn(shape, generator=generator, device=device, dtype=torch.bfloat16) * 3
    teacher = torch.randn(shape, generator=generator, device=device, dtype=torch.bfloat16) * 3
    student.requires_grad_(True)
    times = []
    for _ in range(repeats):
        student.grad = None
        start = time.perf_counter()
        loss_fn(student, teacher).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    saved = saved_for_backward(loss_fn, student, teacher)
    return {"seconds": statistics.median(times[1:] or times), "saved_bytes": saved}


def measure(tokens: int, vocab: int, k: int, repeats: int) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {
        name: measure_one(fn, tokens, vocab, device, repeats) for name, fn in variants(k).items()
    }
    full = results["full_forward_kl"]
    for result in results.values():
        result["time_ratio"] = round(result["seconds"] / full["seconds"], 3)
        result["memory_ratio"] = round(result["saved_bytes"] / full["saved_bytes"], 3)
    return {"device": str(device), "tokens": tokens, "vocab": vocab, "k": k, "variants": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.tokens, args.vocab, args.k, args.repeats)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['device']}: {args.tokens} tokens x vocab {args.vocab:,}, bf16 logits")
    for name, r in report["variants"].items():
        print(
            f"  {name:22s} {r['seconds'] * 1e3:8.1f} ms ({r['time_ratio']:.2f}x)  "
            f"saved for backward {r['saved_bytes'] / 2**20:7.1f} MiB ({r['memory_ratio']:.2f}x)"
        )


if __name__ == "__main__":
    main()
