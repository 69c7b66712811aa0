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


def from_logits(z: Tensor) -> Dist:
    """softmax(z) and log_softmax(z) for one exp per element: the log-normaliser is read off
    the softmax at each row's largest logit, where the probability is at least 1/V."""
    probs = z.softmax(-1)
    top, where = z.max(-1, keepdim=True)
    log_norm = top - probs.gather(-1, where).log()
    return Dist(probs, z - log_norm)


def from_log_probs(log_probs: Tensor) -> Dist:
    return Dist(log_probs.exp(), log_probs)


def divergence_terms(teacher: Dist, student: Dist, kind: str, beta: float, with_grad: bool):
    """Summed divergence between the teacher's p and the student's q over the last dim, and
    H = dL/dlog q shifted to sum to 0 per row (None without `with_grad`)."""
    (p, lp), (q, lq) = teacher, student
    if kind == "forward_kl":
        loss = (p * (lp - lq)).sum()
        return loss, (q - p if with_grad else None)
    if kind == "reverse_kl":
        diff = lq - lp
        rows = (q * diff).sum(-1, keepdim=True)
        return rows.sum(), (diff.sub_(rows).mul_(q) if with_grad else None)
    if kind == "jsd":
        log_mix = (beta * p + (1.0 - beta) * q).clamp_(min=TINY).log_()
        kl_p = (p * (lp - log_mix)).sum()
        student_diff = lq - log_mix
        kl_q_rows = (q * student_diff).sum(-1, keepdim=True)
        loss = beta * kl_p + (1.0 - beta) * kl_q_rows.sum()
        if not with_grad:
            return loss, None
        return loss, student_diff.sub_(kl_q_rows).mul_(q).mul_(1.0 - beta)
    raise ValueError(f"unknown kd_loss {kind!r}")


def tail_buckets(z: Tensor, full: Dist, ids: Tensor) -> tuple[Tensor, Tensor]:
    """The k log-probs at `ids` plus log(1 - their mass) (`[c, k + 1]`), from tempered logits
    `z` and their distribution `full`, and which rows have a thin tail (`[c, 1]` bool).

    The tail mass is a sum of the other tokens' probabilities, never 1 - sum(top k), which
    rounds to 0 when the top k hold nearly everything. Where it is below THIN_TAIL (some of
    its terms may have underflowed) a logsumexp over the other logits gives it exactly; k == V
    leaves no tail, and LOG_ZERO stands in."""
    tail_mass = full.probs.scatter(-1, ids, 0.0).sum(-1, keepdim=True)
    thin = tail_mass < THIN_TAIL
    tail = tail_mass.log_()
    if thin.any():
        rows = thin.squeeze(1).nonzero().squeeze(1)
        log_norm = z[rows, :1] - full.log_probs[rows, :1]
        masked = z[rows].scatter_(-1, ids[rows], float("-inf"))
        tail[rows] = masked.logsumexp(-1, keepdim=True) - log_norm
    picked = full.log_probs.gather(-1, ids)
    return torch.cat([picked, tail.clamp_(min=LOG_ZERO)], -1), thin


def tail_gradient(student: Dist, lq: Tensor, thin: Tensor, h: Tensor, ids: Tensor) -> Tensor:
    """dL/dz from H over the k + 1 buckets: H_j at the top-k ids, q_i / Q_tail * H_tail on
    the tail's tokens (through log-probs on thin-tail rows, where q_i may have underflowed)."""
    h_tail, log_tail = h[:, -1:], lq[:, -1:]
    grad = student.probs * torch.where(thin, 0.0, h_tail / log_tail.exp().clamp(min=THIN_TAIL))
    if thin.any():
        rows = thin.squeeze(1).nonzero().squeeze(1)
        share = (student.log_probs[rows] - log_tail[rows]).clamp_(max=0.0).exp_()
        grad[rows] = share.mul_(h_tail[rows])
    return grad.scatter_(-1, ids, h[:, :-1])


def kd_chunk(student: Tensor, teacher: Tensor, kd: KDOptions, with_grad: bool):
    """KD summed over one chunk's rows (logits `[c, V]`, any float dtype), and its gradient
    with respect to the student's logits (fp32, loss scale and 1/T applied)."""
    temperature = kd.temperature
    zt = teacher.float() / temperature
    grad_factor = kd.loss_scale / temperature
    if kd.top_k is None:
        teacher_dist, student_dist = from_logits(zt), from_logits(student.float() / temperature)
        loss, h = divergence_terms(teacher_dist, student_dist, kd.kind, kd.beta, with_grad)
        return loss * kd.loss_scale, (h.mul_(grad_factor) if with_grad else None)
    ids = zt.topk(kd.top_k, dim=-1, sorted=False).indices
    if kd.top_k_mode == "renormalize":
        lp = from_log_probs(zt.gather(-1, ids).log_softmax(-1))
        lq = from_log_probs((student.gather(-1, ids).float() / temperature).log_softmax(-1))
        loss, h = divergence_terms(lp, lq, kd.kind, kd.beta, with_grad)
        if not with_grad:
            return loss * kd.loss_scale, None
        grad = torch.zeros(student.shape, device=student.device).scatter_(-1, ids, h)
        return loss * kd.loss_scale, grad.mul_(grad_factor)
    if kd.top_k_mode != "tail":
        raise ValueError(f"unknown kd_top_k_mode {kd.top_k_mode!r}")
    zs = student.float() / temperature
    student_full = from_logits(zs)
    lp, _ = tail_buckets(zt, from_logits(zt), ids)
    lq, thin = tail_buckets(zs, student_full, ids)
    loss, h = divergence_terms(from_log_probs(lp), from_log_probs(lq), kd.kind, kd.beta, with_grad)
    if not with_grad:
        return loss * kd.loss_scale, None
    grad = tail_gradient(student_full, lq, thin, h, ids)
    return loss * kd.loss_scale, grad.mul_(grad_factor)


def ce_chunk(student: Tensor, targets: Tensor, with_grad: bool):
    """Next-token CE summed over one chunk's rows, and its gradient softmax - one_hot."""
    log_probs = student.float().log_softmax(-1)
    picked = log_probs.gather(-1, targets[:, None])
    if not with_grad:
        return -picked.sum(), None
    grad = log_probs.exp_()
    grad.scatter_add_(-1, targets[:, None], torch.full_like(picked, -1.0))
    return -picked.sum(), grad


def add_columns(grad: Tensor | None, kd_grad: Tensor, width: int) -> Tensor:
    """`grad` plus `kd_grad` on its first columns; `kd_grad` itself when it is all there is."""
    if grad is None and kd_grad.shape[1] == width:
        return kd_grad
    if grad is None:
        grad = kd_grad.new_zeros(kd_grad.shape[0], width)
    grad[:, : kd_grad.shape[1]] += kd_grad
    return grad


def run_chunks(student, teacher, targets, rows, spec: LogitsLossSpec, grad_out):
    """CE and KD summed over `rows` of `student` / `teacher` (`[R, V]`), one chunk of rows at
    a time; writes the weighted gradient's rows into `grad_out` unless it is None."""
    ce_total = torch.zeros((), dtype=torch.float64, device=student.device)
    kd_total = torch.zeros((), dtype=torch.float64, device=student.device)
    with_grad = grad_out is not None
    for start in range(0, rows.numel(), spec.chunk_rows):
        idx = rows[start : start + spec.chunk_rows]
        chunk = student.index_select(0, idx)
        grad = None
        if spec.ce_weight > 0:
            ce, grad = ce_chunk(chunk, targets.index_select(0, idx), with_grad)
            ce_total += ce
            if with_grad:
                grad.mul_(spec.ce_weight)
        if spec.kd_weight > 0:
            teacher_chunk = teacher.index_select(0, idx)[:, : spec.kd_vocab]
            kd, kd_grad = kd_chunk(chunk[:, : spec.kd_vocab], teacher_chunk, spec.kd, with_grad)
            kd_total += kd
            if with_grad:
                grad = add_columns(grad, kd_grad.mul_(spec.kd_weight), chunk.shape[1])
        if with_grad:
            grad_out.index_copy_(0, idx, grad.to(grad_out.dtype))
    return ce_total.float(), kd_total.float()


class _ChunkedLogitsLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, student, teacher, targets, rows, spec):
        # fp16 would flush the small gradients to 0 before the loss scale reaches them
        dtype = torch.float32 if student.dtype == torch.float16 else student.dtype
        grad = torch.zeros(student.shape, dtype=dtype, device=student.device)
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
