"""Time and peak memory of the KD loss, forward + backward: the straightforward losses, the
chunked one the trainer uses, TRL's generalized_jsd_loss when trl is installed, and a floor.

Each row runs one loss on `[B, T, V]` logits (the student's require grad) with next-token
labels, as the trainer calls it, and reports the best wall time of --repeats runs (each just
after a run of the floor, to which its ratio is taken) and the peak of the memory the loss
allocates beyond its inputs, its gradient included. On CPU the peak comes from torch's
profiler, which records every allocation and free of the CPU allocator with the running
total (exact, no RSS sampling); on CUDA from torch.cuda.max_memory_allocated.

    naive_full    gather the valid rows, `losses.kd_sum` (the trainer's loss until now)
    naive_topk    gather the valid rows, `losses.top_k_kd_sum` (k=--k, tail bucket)
    chunked_full  `kd_chunked.logits_loss`, full vocabulary (the trainer's default now)
    chunked_topk  `kd_chunked.logits_loss`, k=--k, tail bucket
    chunked_topk_renorm   the same, k=--k renormalised
    fused_full    `kd_fused.fused_logits_loss`: the student's hidden state `[B, T, --hidden]`
                  and an lm_head `[V, --hidden]`; its logits never exist (gradients for both)
    linear_chunked_full   the same work unfused: logits = h @ W^T, then chunked_full
    trl_jsd       TRL's GKDTrainer.generalized_jsd_loss (beta 0.5), rows with kind jsd only
    liger_jsd     Liger-Kernel's LigerJSD on log-probs (CUDA only, when it imports)
    floor         one pass that reads both logits tensors and writes a gradient-sized one:
                  what memory bandwidth allows any loss
    floor_exp     one pass with one exp per element (torch.exp of the student's logits): any
                  softmax-based loss needs two (teacher and student)

Ratios are within this one run. Defaults: CPU fp32 on one thread (on a shared 2-core box,
two threads make every small op wait for the other core), forward KL and JSD at T=2, shapes
2x128 and 4x256 at V=50,257; `--full` adds 8x512x50,257 (TRL's JSD alone peaks near 12 GB
there). With CUDA the same grid runs there in bf16 (`--device cpu` forces the CPU).

The fused rows add three matmuls of `[B*T, V] x --hidden` (forward logits, grad h, grad W):
compare them with linear_chunked_full, not with the loss-only rows.

    python benchmarks/kd_loss.py [--full] [--k 256] [--hidden 256] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from distill_doctor.trainer.kd_chunked import KDOptions, logits_loss
from distill_doctor.trainer.kd_fused import fused_logits_loss
from distill_doctor.trainer.losses import gather_valid, kd_sum, top_k_kd_sum, valid_positions

VOCAB = 50257
SHAPES = [(2, 128, VOCAB), (4, 256, VOCAB)]
FULL_SHAPE = (8, 512, VOCAB)
TEMPERATURE = 2.0
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def next_token_targets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100).flatten()
    return targets.clamp(min=0), targets != -100


def chunked(kd: KDOptions, chunk_rows: int | None = None) -> LossFn:
    def run(student, teacher, labels):
        targets, mask = next_token_targets(labels)
        return logits_loss(
            student.flatten(0, 1), teacher.flatten(0, 1), targets, mask, kd=kd, ce_weight=0.0,
            kd_weight=1.0, chunk_rows=chunk_rows,
        ).total  # fmt: skip

    return run


def fused(kd: KDOptions, head: tuple[torch.Tensor, torch.Tensor]) -> LossFn:
    """KD from the hidden state and lm_head of `head` (the student's logits argument is not
    read: the row's inputs are the hidden state and the weight)."""
    hidden, weight = head

    def run(student, teacher, labels):
        targets, mask = next_token_targets(labels)
        return fused_logits_loss(
            hidden.flatten(0, 1), weight, None, teacher.flatten(0, 1), targets, mask, kd=kd,
            ce_weight=0.0, kd_weight=1.0,
        ).total  # fmt: skip

    return run


def linear_chunked(kd: KDOptions, head: tuple[torch.Tensor, torch.Tensor]) -> LossFn:
    hidden, weight = head
    loss = chunked(kd)

    def run(student, teacher, labels):
        return loss(hidden @ weight.T, teacher, labels)

    return run


def naive(kind: str, k: int | None) -> LossFn:
    def run(student, teacher, labels):
        mask = valid_positions(labels)
        s, t = gather_valid(student, mask), gather_valid(teacher, mask)
        if k is None:
            return kd_sum(s, t, temperature=TEMPERATURE, kind=kind)
        return top_k_kd_sum(s, t, k=k, mode="tail", temperature=TEMPERATURE, kind=kind)

    return run


def trl_jsd() -> LossFn | None:
    try:
        from trl.experimental.gkd.gkd_trainer import GKDTrainer
    except Exception:  # not installed, or an API that moved: the row is left out
        return None

    def run(student, teacher, labels):
        return GKDTrainer.generalized_jsd_loss(
            student[:, :-1], teacher[:, :-1], labels[:, 1:], 0.5, TEMPERATURE, "sum"
        )

    return run


def liger_jsd(device: torch.device) -> LossFn | None:
    if device.type != "cuda":
        return None
    try:
        from liger_kernel.transformers import LigerJSD
    except Exception:
        return None
    loss = LigerJSD(beta=0.5)

    def run(student, teacher, labels):
        log_q = (student[:, :-1].float() / TEMPERATURE).log_softmax(-1).flatten(0, 1)
        log_p = (teacher[:, :-1].float() / TEMPERATURE).log_softmax(-1).flatten(0, 1)
        return loss(log_q, log_p, labels[:, 1:].flatten())

    return run


def impls(kind: str, k: int, device: torch.device, head, rows=None) -> dict[str, LossFn]:
    full = KDOptions(kind, TEMPERATURE)
    found = {
        "naive_full": naive(kind, None),
        "naive_topk": naive(kind, k),
        "chunked_full": chunked(full, rows),
        "chunked_topk": chunked(KDOptions(kind, TEMPERATURE, top_k=k), rows),
        "chunked_topk_renorm": chunked(
            KDOptions(kind, TEMPERATURE, top_k=k, top_k_mode="renormalize"), rows
        ),
        "fused_full": fused(full, head),
        "linear_chunked_full": linear_chunked(full, head),
    }
    if kind == "jsd":
        found |= {"trl_jsd": trl_jsd(), "liger_jsd": liger_jsd(device)}
    return {name: fn for name, fn in found.items() if fn is not None}


def floor_pass(student, teacher) -> torch.Tensor:
    return torch.sub(student.detach(), teacher)


def floor_exp_pass(student) -> torch.Tensor:
    return torch.exp(student.detach())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_peak_bytes(step: Callable[[], None]) -> int:
    """Peak of the bytes `step` allocates and has not freed yet: the running sum of the CPU
    allocator's events, in time order (the profiler's own running total carries over what
    earlier sessions allocated and freed unseen)."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()

    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node.children)

    tree = prof.profiler.kineto_results.experimental_event_tree()
    events = sorted(
        (n.start_time_ns, n.extra_fields.alloc_size)
        for n in walk(tree)
        if n.tag == _EventType.Allocation and n.extra_fields.device.type == "cpu"
    )
    live = peak = 0
    for _, size in events:
        live += size
        peak = max(peak, live)
    return peak


def peak_bytes(step: Callable[[], None], device: torch.device) -> int:
    if device.type != "cuda":
        return cpu_peak_bytes(step)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def measure(step: Callable[[], None], device: torch.device, repeats: int, floor=None):
    """(best wall ms and best CPU ms of `repeats` runs after one warm-up, peak bytes of one
    more run, and the best wall and CPU ms of `floor` run just before each of them). The best
    of several runs is what the code costs; the rest is other jobs on a shared machine. The
    floor alternates with the loss, so that a ratio of the two compares runs under the same
    load rather than a floor measured minutes earlier."""
    times, cpu_times, floor_times, floor_cpu_times = [], [], [], []
    for _ in range(repeats + 1):
        if floor is not None:
            wall, cpu = timed(floor, device)
            floor_times.append(wall)
            floor_cpu_times.append(cpu)
        wall, cpu = timed(step, device)
        times.append(wall)
        cpu_times.append(cpu)
    best = [
        min(t[1:]) * 1e3 if t else None for t in (times, cpu_times, floor_times, floor_cpu_times)
    ]
    return best[0], best[1], peak_bytes(step, device), best[2], best[3]


def timed(step: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """(wall s, CPU s) of one run."""
    synchronize(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    step()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


def inputs(shape, device, dtype):
    g = torch.Generator(device=device).manual_seed(0)
    student = torch.randn(shape, generator=g, device=device) * 3
    teacher = torch.randn(shape, generator=g, device=device) * 3
    labels = torch.randint(0, shape[-1], shape[:2], generator=g, device=device)
    labels[0, -shape[1] // 8 :] = -100  # some padding, as a real batch has
    return student.to(dtype).requires_grad_(True), teacher.to(dtype), labels


def head_inputs(shape, hidden_size, device, dtype):
    """A hidden state `[B, T, H]` and an lm_head `[V, H]` whose logits have std 3, as above."""
    g = torch.Generator(device=device).manual_seed(1)
    b, t, v = shape
    hidden = torch.randn(b, t, hidden_size, generator=g, device=device)
    weight = torch.randn(v, hidden_size, generator=g, device=device) * (3 / hidden_size**0.5)
    return hidden.to(dtype).requires_grad_(True), weight.to(dtype).requires_grad_(True)


def bench_shape(shape, args: argparse.Namespace, device, dtype) -> list[dict]:
    student, teacher, labels = inputs(shape, device, dtype)
    head = head_inputs(shape, args.hidden, device, dtype)
    repeats = args.repeats
    b, t, v = shape
    rows = []

    def row(impl, kind, ms, cpu_ms, peak, floor_ms=None, floor_cpu_ms=None) -> None:
        rows.append({"impl": impl, "kind": kind, "B": b, "T": t, "V": v, "ms": round(ms, 1),
                     "cpu_ms": round(cpu_ms, 1), "peak_mb": round(peak / 2**20, 1)})  # fmt: skip
        if floor_ms is not None:  # the floor run beside this row's runs (see `measure`)
            rows[-1].update(floor_ms=round(floor_ms, 1), floor_cpu_ms=round(floor_cpu_ms, 1))

    def floor() -> None:
        floor_pass(student, teacher)

    row("floor", "-", *measure(floor, device, repeats)[:3])
    row("floor_exp", "-", *measure(lambda: floor_exp_pass(student), device, repeats)[:3])
    for kind in args.kinds.split(","):
        for name, fn in impls(kind, args.k, device, head, args.chunk_rows).items():
            if args.impls and name not in args.impls.split(","):
                continue

            def step(fn=fn) -> None:
                fn(student, teacher, labels).backward()
                for tensor in (student, *head):  # after: a step starts with no gradient held
                    tensor.grad = None

            row(name, kind, *measure(step, device, repeats, floor))
    return rows


def ratios(rows: list[dict], key: str) -> list[str]:
    """The issue's goals, each measured within this run, at every shape (those whose rows
    ran), on the times under `key` (ms: wall, cpu_ms: CPU)."""
    lines = []
    for shape in sorted({(r["B"], r["T"], r["V"]) for r in rows}):
        at = {(r["impl"], r["kind"]): r for r in rows if (r["B"], r["T"], r["V"]) == shape}
        for kind in sorted({kind for _, kind in at if kind != "-"}):
            lines += kind_ratios("x".join(map(str, shape)), kind, at, key)
    return lines


def kind_ratios(label: str, kind: str, at: dict, key: str) -> list[str]:
    def ms(name: str) -> float | None:
        return at[name, kind][key] if (name, kind) in at else None

    def mb(name: str) -> float:
        return at[name, kind]["peak_mb"]

    floor, floor_exp = at["floor", "-"][key], at["floor_exp", "-"][key]
    lines = []
    naive, chunk, topk = ms("naive_full"), ms("chunked_full"), ms("chunked_topk")
    if naive and chunk and topk:
        lines.append(
            f"{label} {kind}: chunked_full / naive_full: peak"
            f" {mb('chunked_full') / mb('naive_full'):.2f}x, time {chunk / naive:.2f}x;"
            f" naive_full / chunked_topk time {naive / topk:.2f}x"
        )

    def over_floor(name: str) -> str:
        # against the floor run beside this row's; floor_exp scaled by that floor's drift
        paired = at[name, kind].get(f"floor_{key}", floor)
        exp = floor_exp * paired / floor
        return f"{name} {ms(name) / paired:.1f}x ({ms(name) / exp:.1f}x floor_exp)"

    over = [
        over_floor(name)
        for name in ("chunked_full", "chunked_topk", "chunked_topk_renorm")
        if ms(name)
    ]
    if over:
        lines.append(f"{label} {kind}: time over the floor: {', '.join(over)}")
    if ms("fused_full") and ms("linear_chunked_full"):
        lines.append(
            f"{label} {kind}: fused_full / linear_chunked_full: time"
            f" {ms('fused_full') / ms('linear_chunked_full'):.2f}x, peak"
            f" {mb('fused_full') / mb('linear_chunked_full'):.2f}x"
        )
    if chunk and ms("trl_jsd"):
        lines.append(
            f"{label} {kind}: chunked_full vs trl_jsd: time {chunk / ms('trl_jsd'):.2f}x,"
            f" peak {mb('chunked_full') / mb('trl_jsd'):.2f}x"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="add the 8x512x50257 shape")
    parser.add_argument("--shape", action="append", help="BxTxV instead of the grid")
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256, help="hidden size of the fused rows")
    parser.add_argument("--chunk-rows", type=int, help="rows per chunk (default: the trainer's)")
    parser.add_argument("--impls", help="only these rows (comma-separated; floors always run)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch)")
    parser.add_argument("--kinds", default="forward_kl,jsd")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    dtype = torch.bfloat16 if use_cuda else torch.float32
    shapes = SHAPES + ([FULL_SHAPE] if args.full else [])
    if args.shape:
        shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shape]
    rows = [r for s in shapes for r in bench_shape(s, args, device, dtype)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"{device} {str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads, "
          f"T={TEMPERATURE}, k={args.k}, forward + backward")  # fmt: skip
    print(f"{'impl':20s} {'kind':10s} {'B':>3s} {'T':>5s} {'V':>7s} {'ms':>9s} {'cpu ms':>9s} "
          f"{'peak MiB':>9s}")  # fmt: skip
    for r in rows:
        print(
            f"{r['impl']:20s} {r['kind']:10s} {r['B']:3d} {r['T']:5d} {r['V']:7d} "
            f"{r['ms']:9.1f} {r['cpu_ms']:9.1f} {r['peak_mb']:9.1f}"
        )
    # On CPU the ratios use CPU time: on a shared box the wall time waits for other jobs.
    key = "ms" if use_cuda else "cpu_ms"
    print(f"ratios of {'wall' if use_cuda else 'CPU'} times:")
    print("\n".join(ratios(rows, key)))


if __name__ == "__main__":
    main()
