"""What torch.compile would buy the chunked KD loss: the eager chunked loss the trainer runs
(`kd_chunked.logits_loss`, forward + backward) against the same closed-form loss and gradient
per chunk written as plain torch ops and compiled by inductor (CPU: C++ code generation, one
fused loop nest per chunk instead of torch's one pass per op). Not a path of the trainer:
this measures whether one is worth adding. Needs a C++ compiler; reports the compile time.

Same inputs as benchmarks/kd_loss.py (fp32 CPU, std-3 logits, T=2), every row valid; the
compiled function is specialised to the chunk shape (the last, shorter chunk compiles once
more). Ratios are within this one run; CPU time beside wall time.

    python benchmarks/kd_chunk_compile.py [--shape 4x256x50257] [--kinds forward_kl,jsd] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from distill_doctor.trainer.kd_chunked import TINY, KDOptions, chunk_rows_for, logits_loss

TEMPERATURE = 2.0
BETA = 0.5


def closed_form(student, teacher, kind: str):
    """KD summed over the chunk and its gradient with respect to the student's logits (T^2
    scaled), as `kd_chunked.divergence_terms` computes them, in plain ops for inductor."""
    lp = (teacher / TEMPERATURE).log_softmax(-1)
    lq = (student / TEMPERATURE).log_softmax(-1)
    p, q = lp.exp(), lq.exp()
    if kind == "forward_kl":
        loss, h = (p * (lp - lq)).sum(), q - p
    elif kind == "reverse_kl":
        diff = lq - lp
        rows = (q * diff).sum(-1, keepdim=True)
        loss, h = rows.sum(), q * (diff - rows)
    else:
        log_mix = (BETA * p + (1 - BETA) * q).clamp_min(TINY).log()
        student_diff = lq - log_mix
        kl_q_rows = (q * student_diff).sum(-1, keepdim=True)
        loss = BETA * (p * (lp - log_mix)).sum() + (1 - BETA) * kl_q_rows.sum()
        h = (1 - BETA) * q * (student_diff - kl_q_rows)
    return loss * TEMPERATURE**2, h * TEMPERATURE


def timed(step, repeats: int) -> tuple[float, float]:
    """(best wall ms, best CPU ms) over `repeats` runs after one warm-up."""
    step()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall) * 1e3, min(cpu) * 1e3


def compare(shape, kind: str, repeats: int) -> dict:
    b, t, v = shape
    g = torch.Generator().manual_seed(0)
    student = (torch.randn(b * t, v, generator=g) * 3).requires_grad_(True)
    teacher = torch.randn(b * t, v, generator=g) * 3
    targets, mask = torch.zeros(b * t, dtype=torch.long), torch.ones(b * t, dtype=torch.bool)
    kd = KDOptions(kind, TEMPERATURE, beta=BETA)

    def eager() -> None:
        logits_loss(
            student, teacher, targets, mask, kd=kd, ce_weight=0, kd_weight=1
        ).total.backward()
        student.grad = None

    rows = chunk_rows_for(v)
    compiled_chunk = torch.compile(closed_form, dynamic=False)
    grad = torch.empty(b * t, v)

    def compiled() -> None:
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, b * t, rows):
            loss, h = compiled_chunk(
                student[start : start + rows].detach(), teacher[start : start + rows], kind
            )
            grad[start : start + rows].copy_(h)
            total += loss

    start = time.perf_counter()
    compiled()  # compiles for the full chunk and the last one
    compile_s = time.perf_counter() - start
    eager_ms, eager_cpu = timed(eager, repeats)
    compiled_ms, compiled_cpu = timed(compiled, repeats)
    return {
        "kind": kind,
        "B": b,
        "T": t,
        "V": v,
        "eager_ms": round(eager_ms, 1),
        "eager_cpu_ms": round(eager_cpu, 1),
        "compiled_ms": round(compiled_ms, 1),
        "compiled_cpu_ms": round(compiled_cpu, 1),
        "compile_s": round(compile_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="4x256x50257")
    parser.add_argument("--kinds", default="forward_kl,jsd")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = tuple(int(n) for n in args.shape.split("x"))
    rows = [compare(shape, kind, args.repeats) for kind in args.kinds.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for r in rows:
        print(
            f"{r['kind']} {args.shape}: eager {r['eager_ms']:.0f} ms ({r['eager_cpu_ms']:.0f} CPU),"
            f" compiled {r['compiled_ms']:.0f} ms ({r['compiled_cpu_ms']:.0f} CPU):"
            f" {r['compiled_ms'] / r['eager_ms']:.2f}x the time, after {r['compile_s']:.0f} s"
            " of compiling"
        )


if __name__ == "__main__":
    main()
