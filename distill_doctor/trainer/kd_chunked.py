"""The logits losses (CE and KD) in row chunks: no vocabulary-wide fp32 tensor ever exists.

The straightforward losses (`losses.kd_sum`, `losses.top_k_kd_sum`, `losses.ce_sum`, kept as
the test oracle) upcast the whole `[N, V]` logits and keep two to five fp32 `[N, V]` tensors
for backward. Here a custom autograd function walks the valid rows a chunk at a time: it
upcasts one chunk, computes its loss and its gradient in closed form, writes the gradient
into one buffer shaped like the student's logits (their dtype; fp32 for fp16 logits, which
would flush small gradients to zero before the loss scale reaches them) and frees the chunk.
Backward only scales that buffer. Extra memory: the gradient the logits need anyway, plus a
few fp32 `[chunk, V]` buffers. The same idea as Liger-Kernel's fused losses and torchtune's
chunked output, without a kernel of its own.

Speed: in eager torch every op is one pass over the chunk, so the count of passes is the
cost. The chunk buffers (`Workspace`) are allocated once and filled with out= and in-place
ops; each softmax yields both probabilities and log-probabilities for one exp per element
(`tempered_dist`); row sums of products are batched dot products (`row_dots`), with no
product tensor; consecutive rows are read as views and the gradient is written straight
into its rows. Chunks of ~2 MiB per buffer keep the handful of buffers in cache
(benchmarks/kd_loss.py --chunk-rows).

Every divergence comes as its row losses and H = dL/dlog Q, the gradient with respect to
the student's log-probabilities, shifted by a multiple of Q so that it sums to 0 (the
softmax's Jacobian ignores such shifts). Then the gradient with respect to the tempered
student logits is H itself for full-vocabulary KD and for the renormalised top-k buckets,
and q_i / Q_tail * H_tail on the tokens that fall into the top-k tail bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from distill_doctor.config.schema import KD_CHUNK_ELEMENTS

# Stands in for log(0) in the top-k tail bucket: exp(-1e4) is exactly 0 in fp32, and unlike
# -inf it keeps 0 * (log p - log q) at 0 instead of NaN.
LOG_ZERO = -1e4
# The smallest normal fp32: a JSD mixture below it holds no mass worth a log.
TINY = torch.finfo(torch.float32).tiny
# Below this tail mass some of its tokens' probabilities may have underflowed fp32 (1e-38):
# such rows take the exact, slower logsumexp path.
THIN_TAIL = 1e-20


@dataclass(frozen=True)
class KDOptions:
    """What KD computes: `kind` forward_kl | reverse_kl | jsd (generalised, `beta` weighs the
    teacher as TRL's generalized_jsd_loss does), at `temperature`, times T^2 when `scale_t2`;
    over the teacher's `top_k` tokens (`top_k_mode` tail | renormalize) or the full vocab."""

    kind: str = "forward_kl"
    temperature: float = 1.0
    scale_t2: bool = True
    beta: float = 0.5
    top_k: int | None = None
    top_k_mode: str = "tail"

    @property
    def loss_scale(self) -> float:
        return self.temperature**2 if self.scale_t2 else 1.0


@dataclass(frozen=True)
class LogitsLossSpec:
    kd: KDOptions
    ce_weight: float
    kd_weight: float
    kd_vocab: int  # KD runs over the first kd_vocab columns (padded embedding rows cut off)
    chunk_rows: int


class LogitsLoss(NamedTuple):
    total: Tensor  # ce_weight * ce + kd_weight * kd: the only output with a gradient
    ce: Tensor  # summed over the valid rows, detached
    kd: Tensor


class Dist(NamedTuple):
    """A distribution over the last dim, as probabilities and as log-probabilities."""

    probs: Tensor
    log_probs: Tensor


class Workspace:
    """The fp32 `[chunk_rows, cols]` buffers every chunk reuses (filled with out= and in-place
    ops): one allocation per buffer for the whole loss, not one per op and chunk."""

    def __init__(self, rows: int, device: torch.device) -> None:
        self.rows, self.device = rows, device
        self.buffers: dict[tuple[str, int], Tensor] = {}

    def get(self, name: str, rows: int, cols: int) -> Tensor:
        buffer = self.buffers.get((name, cols))
        if buffer is None:
            buffer = torch.empty(self.rows, cols, device=self.device)
            self.buffers[name, cols] = buffer
        return buffer[:rows]


def tempered_dist(z: Tensor, temperature: float, log_out: Tensor, prob_out: Tensor) -> Dist:
    """log_softmax(z / T) into `log_out` and softmax(z / T) into `prob_out`, in six passes
    over the row and one exp per element (torch's softmax and log_softmax, one output each,
    would take two exps or a second max pass to give both)."""
    if z.dtype == torch.float32:
        torch.div(z, temperature, out=log_out)
    else:  # upcast first: dividing in half precision would round before the upcast
        log_out.copy_(z).div_(temperature)
    log_out.sub_(log_out.amax(-1, keepdim=True))
    total = torch.exp(log_out, out=prob_out).sum(-1, keepdim=True)
    prob_out.div_(total)
    log_out.sub_(total.log_())
    return Dist(prob_out, log_out)


def from_log_probs(log_probs: Tensor) -> Dist:
    return Dist(log_probs.exp(), log_probs)


def row_dots(a: Tensor, b: Tensor) -> Tensor:
    """`[c, 1]`: sum(a * b) per row, with no `[c, V]` product in between."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1, 1)


def divergence_terms(
    teacher: Dist, student: Dist, kind: str, beta: float, with_grad: bool, scratch=None
):
    """Summed divergence between the teacher's p and the student's q over the last dim, and
    (h, factor) with factor * h = H = dL/dlog q shifted to sum to 0 per row (h None without
    `with_grad`). Works in place: both log-probs and q are overwritten; jsd writes its
    mixture into `scratch` (shaped like q) when given."""
    (p, lp), (q, lq) = teacher, student
    if kind == "forward_kl":
        loss = row_dots(p, lp.sub_(lq)).sum()
        return loss, (q.sub_(p) if with_grad else None), 1.0
    if kind == "reverse_kl":
        diff = lq.sub_(lp)
        rows = row_dots(q, diff)
        return rows.sum(), (diff.sub_(rows).mul_(q) if with_grad else None), 1.0
    if kind == "jsd":
        log_mix = torch.mul(p, beta, out=scratch) if scratch is not None else p * beta
        log_mix.add_(q, alpha=1.0 - beta).clamp_(min=TINY).log_()
        kl_p = row_dots(p, lp.sub_(log_mix)).sum()
        student_diff = lq.sub_(log_mix)
        kl_q_rows = row_dots(q, student_diff)
        loss = beta * kl_p + (1.0 - beta) * kl_q_rows.sum()
        if not with_grad:
            return loss, None, 1.0
        return loss, student_diff.sub_(kl_q_rows).mul_(q), 1.0 - beta
    raise ValueError(f"unknown kd_loss {kind!r}")


def tail_buckets(full: Dist, ids: Tensor) -> tuple[Tensor, Tensor]:
    """The k log-probs at `ids` plus log(1 - their mass) (`[c, k + 1]`) of the distribution
    `full`, and which rows have a thin tail (`[c, 1]` bool).

    The tail mass is a sum of the other tokens' probabilities, never 1 - sum(top k), which
    rounds to 0 when the top k hold nearly everything. Where it is below THIN_TAIL (some of
    its terms may have underflowed) a logsumexp over the other log-probs gives it exactly;
    k == V leaves no tail, and LOG_ZERO stands in. Zeroes `full.probs` at `ids` (no one reads
    them there again: `tail_gradient` writes H_j over them)."""
    tail_mass = full.probs.scatter_(-1, ids, 0.0).sum(-1, keepdim=True)
    thin = tail_mass < THIN_TAIL
    tail = tail_mass.log_()
    if thin.any():
        rows = thin.squeeze(1).nonzero().squeeze(1)
        masked = full.log_probs[rows].scatter_(-1, ids[rows], float("-inf"))
        tail[rows] = masked.logsumexp(-1, keepdim=True)
    picked = full.log_probs.gather(-1, ids)
    return torch.cat([picked, tail.clamp_(min=LOG_ZERO)], -1), thin


def tail_gradient(student: Dist, log_tail: Tensor, thin: Tensor, h: Tensor, ids: Tensor):
    """dL/dz from H over the k + 1 buckets, in place of `student.probs`: H_j at the top-k
    ids, q_i / Q_tail * H_tail on the tail's tokens (through log-probs on thin-tail rows,
    where q_i may have underflowed)."""
    h_tail = h[:, -1:]
    share = torch.where(thin, 0.0, h_tail / log_tail.exp().clamp(min=THIN_TAIL))
    grad = student.probs.mul_(share)
    if thin.any():
        rows = thin.squeeze(1).nonzero().squeeze(1)
        exact = (student.log_probs[rows] - log_tail[rows]).clamp_(max=0.0).exp_()
        grad[rows] = exact.mul_(h_tail[rows])
    return grad.scatter_(-1, ids, h[:, :-1])


def kd_terms(student: Tensor, teacher: Tensor, kd: KDOptions, ws: Workspace, with_grad: bool):
    """KD summed over one chunk's rows (logits `[c, V]`, any float dtype), and (h, factor):
    factor * h is its gradient with respect to the tempered student logits, before the loss
    scale (h `[c, V]` fp32, one of `ws`'s buffers)."""
    rows, vocab = student.shape
    temperature = kd.temperature
    if kd.top_k is None:
        teacher_dist = tempered_dist(
            teacher, temperature, ws.get("t_log", rows, vocab), ws.get("t_prob", rows, vocab)
        )
        student_dist = tempered_dist(
            student, temperature, ws.get("s_log", rows, vocab), ws.get("s_prob", rows, vocab)
        )
        scratch = ws.get("mix", rows, vocab) if kd.kind == "jsd" else None
        return divergence_terms(teacher_dist, student_dist, kd.kind, kd.beta, with_grad, scratch)
    ids = teacher.topk(kd.top_k, dim=-1, sorted=False).indices  # the order of teacher / T
    if kd.top_k_mode == "renormalize":
        lp = from_log_probs((teacher.gather(-1, ids).float() / temperature).log_softmax(-1))
        lq = from_log_probs((student.gather(-1, ids).float() / temperature).log_softmax(-1))
        loss, h, factor = divergence_terms(lp, lq, kd.kind, kd.beta, with_grad)
        if not with_grad:
            return loss, None, factor
        return loss, ws.get("s_prob", rows, vocab).zero_().scatter_(-1, ids, h), factor
    if kd.top_k_mode != "tail":
        raise ValueError(f"unknown kd_top_k_mode {kd.top_k_mode!r}")
    teacher_full = tempered_dist(
        teacher, temperature, ws.get("t_log", rows, vocab), ws.get("t_prob", rows, vocab)
    )
    student_full = tempered_dist(
        student, temperature, ws.get("s_log", rows, vocab), ws.get("s_prob", rows, vocab)
    )
    lp, _ = tail_buckets(teacher_full, ids)
    lq, thin = tail_buckets(student_full, ids)
    log_tail = lq[:, -1:].clone()  # divergence_terms overwrites lq
    loss, h, factor = divergence_terms(
        from_log_probs(lp), from_log_probs(lq), kd.kind, kd.beta, with_grad
    )
    if not with_grad:
        return loss, None, factor
    return loss, tail_gradient(student_full, log_tail, thin, h, ids), factor


def ce_terms(student: Tensor, targets: Tensor, ws: Workspace, with_grad: bool):
    """Next-token CE summed over one chunk's rows, and its gradient softmax - one_hot (in
    one of `ws`'s buffers)."""
    rows, width = student.shape
    dist = tempered_dist(
        student, 1.0, ws.get("ce_log", rows, width), ws.get("ce_prob", rows, width)
    )
    picked = dist.log_probs.gather(-1, targets[:, None])
    if not with_grad:
        return -picked.sum(), None
    return -picked.sum(), dist.probs.scatter_add_(
        -1, targets[:, None], torch.full_like(picked, -1.0)
    )


def chunk_terms(student, teacher, targets, spec: LogitsLossSpec, ws: Workspace, grad):
    """CE and KD summed over one chunk's rows (`student` `[c, width]`); writes their weighted
    gradient with respect to `student` into `grad` (fp32 `[c, width]`) unless it is None."""
    zero = torch.zeros((), device=student.device)
    ce = kd = zero
    with_grad = grad is not None
    written = False
    if spec.ce_weight > 0:
        ce, h = ce_terms(student, targets, ws, with_grad)
        if with_grad:
            torch.mul(h, spec.ce_weight, out=grad)
            written = True
    if spec.kd_weight > 0:
        kd, h, factor = kd_terms(student[:, : spec.kd_vocab], teacher, spec.kd, ws, with_grad)
        kd = kd * spec.kd.loss_scale
        if with_grad:
            scale = factor * spec.kd_weight * spec.kd.loss_scale / spec.kd.temperature
            columns = grad[:, : spec.kd_vocab]
            if written:
                columns.add_(h, alpha=scale)
            else:
                torch.mul(h, scale, out=columns)
                grad[:, spec.kd_vocab :].zero_()
                written = True
    if with_grad and not written:
        grad.zero_()
    return ce, kd


def row_runs(rows: Tensor, chunk_rows: int):
    """(first row or None, row ids, the same ids on the host) for each chunk of `rows`:
    consecutive rows (first row given) are read as a view, others gathered by a copy."""
    host = rows.cpu()  # one device sync for the whole loss, not one per chunk
    for start in range(0, rows.numel(), chunk_rows):
        ids = host[start : start + chunk_rows]
        yield run_start(ids), rows[start : start + chunk_rows], ids


def run_start(host_ids: Tensor) -> int | None:
    """The first of `host_ids` when they are consecutive rows, else None."""
    first = int(host_ids[0])
    return first if int(host_ids[-1]) - first + 1 == host_ids.numel() else None


def take(tensor: Tensor, first: int | None, idx: Tensor) -> Tensor:
    """Rows `idx` of `tensor`: a view when they start at `first` and run on, else a copy."""
    if first is not None:
        return tensor.narrow(0, first, idx.numel())
    return tensor.index_select(0, idx)


def run_chunks(student, teacher, targets, rows, spec: LogitsLossSpec, grad_out):
    """CE and KD summed over `rows` of `student` / `teacher` (`[R, V]`), one chunk of rows at
    a time; writes the weighted gradient's rows into `grad_out` unless it is None (the other
    rows of `grad_out` are left as they are)."""
    ce_total = torch.zeros((), dtype=torch.float64, device=student.device)
    kd_total = torch.zeros((), dtype=torch.float64, device=student.device)
    ws = Workspace(min(spec.chunk_rows, rows.numel()), student.device)
    width = student.shape[1]
    for first, idx, _ in row_runs(rows, spec.chunk_rows):
        teacher_chunk = None
        if spec.kd_weight > 0:
            teacher_chunk = take(teacher, first, idx)[:, : spec.kd_vocab]
        # fp32 rows in a run: the gradient is written where it belongs, with no copy
        direct = grad_out is not None and first is not None and grad_out.dtype == torch.float32
        grad = None
        if direct:
            grad = grad_out.narrow(0, first, idx.numel())
        elif grad_out is not None:
            grad = ws.get("grad", idx.numel(), width)
        ce, kd = chunk_terms(
            take(student, first, idx), teacher_chunk, take(targets, first, idx), spec, ws, grad
        )
        ce_total += ce
        kd_total += kd
        if grad_out is not None and not direct:
            grad_out.index_copy_(0, idx, grad.to(grad_out.dtype))
    return ce_total.float(), kd_total.float()


def zero_other_rows(grad: Tensor, rows: Tensor) -> None:
    """Zero the rows of `grad` that `rows` does not name (the masked ones), touching no other
    row: a mask over the whole buffer would cost a full pass."""
    masked = torch.ones(grad.shape[0], dtype=torch.bool, device=grad.device)
    masked[rows] = False
    grad.index_fill_(0, masked.nonzero().squeeze(1), 0)


class _ChunkedLogitsLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, student, teacher, targets, rows, spec):
        # fp16 would flush the small gradients to 0 before the loss scale reaches them
        dtype = torch.float32 if student.dtype == torch.float16 else student.dtype
        grad = torch.empty(student.shape, dtype=dtype, device=student.device)
        zero_other_rows(grad, rows)
        ce, kd = run_chunks(student, teacher, targets, rows, spec, grad)
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(ce, kd)
        return spec.ce_weight * ce + spec.kd_weight * kd, ce, kd

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total, _grad_ce, _grad_kd):
        (grad,) = ctx.saved_tensors
        if not torch.equal(grad_total, torch.ones_like(grad_total)):
            grad.mul_(grad_total.to(grad.dtype))  # the buffer is ours: scale it in place
        return grad, None, None, None, None


def chunk_rows_for(vocab: int, chunk_rows: int | None = None) -> int:
    """Rows per chunk: `chunk_rows` if given, else as many as fit KD_CHUNK_ELEMENTS."""
    return chunk_rows or max(1, KD_CHUNK_ELEMENTS // max(vocab, 1))


def logits_loss(
    student: Tensor,
    teacher: Tensor | None,
    targets: Tensor,
    mask: Tensor,
    *,
    kd: KDOptions,
    ce_weight: float,
    kd_weight: float,
    kd_vocab: int | None = None,
    chunk_rows: int | None = None,
) -> LogitsLoss:
    """CE (over all of the student's columns, against `targets`) and KD (over the first
    `kd_vocab` columns), summed over the rows where `mask` is true. `student` `[R, Vs]`,
    `teacher` `[R, Vt]` (None without KD), `targets` and `mask` `[R]`; rows that do not count
    (padding, each sequence's last position) are never read. An all-masked input gives zeros
    and a zero gradient."""
    if kd_weight > 0 and teacher is None:
        raise ValueError("KD needs the teacher's logits")
    kd_vocab = kd_vocab or student.shape[-1]
    spec = LogitsLossSpec(kd, ce_weight, kd_weight, kd_vocab, chunk_rows_for(kd_vocab, chunk_rows))
    rows = mask.nonzero().squeeze(1)
    if kd_weight > 0:
        teacher = teacher.detach()
    if torch.is_grad_enabled() and student.requires_grad:
        return LogitsLoss(*_ChunkedLogitsLoss.apply(student, teacher, targets, rows, spec))
    ce, kd_sum = run_chunks(student, teacher, targets, rows, spec, None)
    return LogitsLoss(ce_weight * ce + kd_weight * kd_sum, ce, kd_sum)
