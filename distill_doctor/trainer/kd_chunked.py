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
cost, and exp, log and bmm passes cost far more than the rest on CPU. The chunk buffers
(`Workspace`) are allocated once and filled with out= and in-place ops. Each model's logits
take one max pass and one add that divides by T, subtracts the max and changes to base 2
(`shift_rows`), then one exp2 (half the time of torch's exp) and one sum: the distributions
are never normalised, their sums are `[c, 1]` factors folded into the dot products and the
gradient's last pass. The student's exps go straight into the output gradient's rows, which
the gradient then overwrites in place. Row dot products are a product into a spent buffer
and a sum (bmm takes ten times as long). Full forward KL takes 13 passes over the chunk (two
of them exp2), reverse KL 14, JSD 21 (one log2); top-k tail mode 7 after the teacher's top
k (`top_k_select`: one max pass over blocks of 32, then small work), whose values give the
teacher's row max, while the student's exps are shifted by its largest logit at those k
(`student_tail_exps`). Consecutive rows are read as views; chunks of ~2 MiB per buffer,
twice that for top-k KD (benchmarks/kd_loss.py --chunk-rows).

Every divergence's gradient is H = dL/dlog Q, the gradient with respect to the student's
log-probabilities, shifted by a multiple of Q so that it sums to 0 (the softmax's Jacobian
ignores such shifts). Then the gradient with respect to the tempered student logits is H
itself for full-vocabulary KD and for the renormalised top-k buckets, and
q_i / Q_tail * H_tail on the tokens that fall into the top-k tail bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from distill_doctor.config.schema import KD_CHUNK_ELEMENTS
from distill_doctor.trainer.top_k_select import top_k

# Stands in for log(0) in the top-k tail bucket: exp(-1e4) is exactly 0 in fp32, and unlike
# -inf it keeps 0 * (log p - log q) at 0 instead of NaN.
LOG_ZERO = -1e4
# The smallest normal fp32: a JSD mixture below it holds no mass worth a log.
TINY = torch.finfo(torch.float32).tiny
# Below this tail mass some of its tokens' probabilities may have underflowed fp32 (1e-38):
# such rows take the exact, slower logsumexp path.
THIN_TAIL = 1e-20
# Top-k KD keeps at most three vocabulary-wide fp32 buffers per chunk (the teacher's exps;
# the KD gradient beside CE's; a gradient copy for rows that are no view) where full KD keeps
# up to six and `doctor check` counts nine: twice the rows still fit under that count, and
# they halve the ~120 small ops every chunk pays (a few per cent of the tail mode's time at
# V = 50,257: benchmarks/kd_chunk_rows.py --top-k 256 --rows 10,20,40).
TOP_K_CHUNK_FACTOR = 2
# The shifted logits are kept in base 2 (see shift_rows): LOG2_E converts in, LN_2 out.
LOG2_E = 1.0 / math.log(2.0)
LN_2 = math.log(2.0)


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


def shift_rows(z: Tensor, inv_t: float, out: Tensor, row_max: Tensor | None = None) -> Tensor:
    """(z / T - max(z / T)) * log2(e) into `out` (fp32) in one pass, the division, the max
    subtraction and the change of base folded into one add, so that exp2 of it is the
    exp of the shifted logits (torch's exp2 takes half the time of its exp on CPU); returns
    max(z / T) `[c, 1]`. `row_max`, max(z) when known, saves the max pass (T > 0)."""
    top = (z.amax(-1, keepdim=True) if row_max is None else row_max).float()
    alpha = inv_t * LOG2_E
    torch.add(top * -alpha, z, alpha=alpha, out=out)
    return top.mul_(inv_t)


def exp_sums(shifted: Tensor, out: Tensor) -> Tensor:
    """exp2(`shifted`) into `out` (may be `shifted` itself); its row sums `[c, 1]`."""
    return torch.exp2(shifted, out=out).sum(-1, keepdim=True)


def row_dots(a: Tensor, b: Tensor, out: Tensor | None = None) -> Tensor:
    """`[c, 1]`: sum(a * b) per row, the product in `out` when given. Two cheap passes: a
    batched dot product (bmm) of `[c, 1, V]` by `[c, V, 1]` avoids the product but takes
    about ten times as long as both on CPU."""
    return torch.mul(a, b, out=out).sum(-1, keepdim=True)


def from_log_probs(log_probs: Tensor) -> Dist:
    return Dist(log_probs.exp(), log_probs)


def divergence_terms(teacher: Dist, student: Dist, kind: str, beta: float, with_grad: bool):
    """Summed divergence between the teacher's p and the student's q over the last dim (the
    k (+1) buckets of top-k KD: small tensors), and (h, factor) with factor * h = H = dL/dlog q
    shifted to sum to 0 per row (h None without `with_grad`). Overwrites both log-probs and q."""
    (p, lp), (q, lq) = teacher, student
    if kind == "forward_kl":
        loss = row_dots(p, lp.sub_(lq)).sum()
        return loss, (q.sub_(p) if with_grad else None), 1.0
    if kind == "reverse_kl":
        diff = lq.sub_(lp)
        rows = row_dots(q, diff)
        return rows.sum(), (diff.sub_(rows).mul_(q) if with_grad else None), 1.0
    if kind == "jsd":
        log_mix = (p * beta).add_(q, alpha=1.0 - beta).clamp_(min=TINY).log_()
        kl_p = row_dots(p, lp.sub_(log_mix)).sum()
        student_diff = lq.sub_(log_mix)
        kl_q_rows = row_dots(q, student_diff)
        loss = beta * kl_p + (1.0 - beta) * kl_q_rows.sum()
        if not with_grad:
            return loss, None, 1.0
        return loss, student_diff.sub_(kl_q_rows).mul_(q), 1.0 - beta
    raise ValueError(f"unknown kd_loss {kind!r}")


def full_vocab_kd(student: Tensor, teacher: Tensor, kd: KDOptions, ws: Workspace, grad, scale):
    """Full-vocabulary KD summed over one chunk's rows (logits `[c, V]`); writes `scale` times
    its gradient with respect to the tempered student logits into `grad` (fp32 `[c, V]`)
    unless it is None.

    Works on the shifted logits s = z / T - max (in base 2: s2 = s * log2(e), see
    shift_rows) and their exps e = exp(s), never normalised: with S = sum(e), p = e_t / S_t
    and log p = s_t - log S_t, so every normalisation and change of base is a `[c, 1]` factor
    folded into a dot product or into the gradient's last pass. The student's exps are
    written into `grad` itself, which the gradient then overwrites in place."""
    rows, vocab = student.shape
    inv_t, beta = 1.0 / kd.temperature, kd.beta
    shift_t, exp_t = ws.get("t_shift", rows, vocab), ws.get("t_exp", rows, vocab)
    shift_rows(teacher, inv_t, shift_t)
    sum_t = exp_sums(shift_t, exp_t)
    exp_q = grad if grad is not None else ws.get("s_exp", rows, vocab)
    if kd.kind in ("forward_kl", "reverse_kl"):
        top_q = shift_rows(student, inv_t, exp_q)
        sum_q = exp_sums(exp_q, exp_q)
        diff = shift_t.sub_(student, alpha=inv_t * LOG2_E)  # d (z_t/T - max_t - z_q/T), base 2
        # log p - log q = d - log S_t + log S_q + max_q
        offset = sum_q.log() + top_q - sum_t.log()
        if kd.kind == "forward_kl":
            loss = (row_dots(exp_t, diff, out=diff) * (LN_2 / sum_t) + offset).sum()
            if grad is not None:  # q - p
                grad.mul_(scale / sum_q).addcmul_(exp_t, -scale / sum_t)
            return loss
        mean_diff = row_dots(exp_q, diff, out=exp_t) / sum_q  # E_q[d], base 2
        if grad is not None:  # q * (log q - log p - KL) = q * (E_q[d] - d)
            grad.mul_(diff.sub_(mean_diff).mul_(-LN_2 * scale / sum_q))
        return (mean_diff * LN_2 + offset).neg_().sum()
    if kd.kind != "jsd":
        raise ValueError(f"unknown kd_loss {kd.kind!r}")
    shift_q = ws.get("s_shift", rows, vocab)
    shift_rows(student, inv_t, shift_q)
    sum_q = exp_sums(shift_q, exp_q)
    # log M, clamped: log(0) where both p and q underflow would make 0 * log 0 NaN
    log_mix = ws.get("mix", rows, vocab)
    torch.mul(exp_t, beta / sum_t, out=log_mix).addcmul_(exp_q, (1.0 - beta) / sum_q)
    log_mix.clamp_(min=TINY).log2_()
    log_sum_t, log_sum_q = sum_t.log2(), sum_q.log2()
    # the KLs in base 2 (bits) until the end
    kl_p = row_dots(exp_t, shift_t.sub_(log_mix), out=shift_t) / sum_t - log_sum_t
    diff_q = shift_q.sub_(log_mix)
    kl_q = row_dots(exp_q, diff_q, out=exp_t) / sum_q - log_sum_q
    if grad is not None:  # (1 - beta) q * (log q - log M - KL(q || M))
        factor = LN_2 * scale * (1.0 - beta) / sum_q
        grad.mul_(diff_q.sub_(log_sum_q + kl_q).mul_(factor))
    return LN_2 * (beta * kl_p.sum() + (1.0 - beta) * kl_q.sum())


def tail_exps(z: Tensor, inv_t: float, ids: Tensor, out: Tensor, row_max=None):
    """For top-k tail KD: the shifted logits s = z / T - max at `ids` (`[c, k]`), exp(s) into
    `out` with 0 at `ids`, the row max of z / T, the tail's exp sum and the exp sum S.

    The tail sum adds the other tokens' exps, never S - sum(top k), which rounds to 0 when
    the top k hold nearly everything."""
    top = shift_rows(z, inv_t, out, row_max)
    picked = out.gather(-1, ids).mul_(LN_2)
    tail = out.exp2_().scatter_(-1, ids, 0.0).sum(-1, keepdim=True)
    return picked, top, tail, tail + picked.exp().sum(-1, keepdim=True)


def student_tail_exps(z: Tensor, inv_t: float, ids: Tensor, out: Tensor):
    """`tail_exps` for the student, shifted by its largest logit among the teacher's top k
    instead of its row max, which saves a max pass over the row. That shift is at most the
    max, so every sum is at least 1 and the sums are as exact as before; but an exp
    overflows where the student puts a logit more than about 88 T above all of the
    teacher's top k: those rows (sums inf) are redone with the row max."""
    found = tail_exps(z, inv_t, ids, out, z.gather(-1, ids).amax(-1, keepdim=True))
    overflow = found[-1].isinf().squeeze(1)
    if not overflow.any():
        return found
    rows = overflow.nonzero().squeeze(1)
    exps = torch.empty(rows.numel(), z.shape[1], device=z.device)
    redone = tail_exps(z[rows], inv_t, ids[rows], exps)
    out[rows] = exps
    for value, fixed in zip(found, redone, strict=True):
        value[rows] = fixed
    return found


def bucket_log_probs(picked: Tensor, tail: Tensor, total: Tensor, exact_tail: Tensor | None):
    """The k log-probs plus the tail's (`[c, k + 1]`) from `tail_exps`'s sums; the rows where
    `exact_tail` is not NaN (thin tails, some of whose terms may have underflowed) take the
    log of the tail's exp sum from it (None: no such rows); k == V leaves no tail: LOG_ZERO."""
    log_total = total.log()
    log_tail = tail.log()
    if exact_tail is not None:
        log_tail = torch.where(exact_tail.isnan(), log_tail, exact_tail)
    return torch.cat([picked - log_total, log_tail.sub_(log_total).clamp_(min=LOG_ZERO)], -1)


def exact_log_tails(z: Tensor, inv_t: float, top: Tensor, ids: Tensor, thin: Tensor):
    """`[c, 1]`: log of the tail's exp sum by logsumexp on the `thin` rows (recomputed from
    the logits: few rows, if any), NaN elsewhere; and those rows' shifted logits with -inf at
    `ids`. All three None without thin rows."""
    if not thin.any():
        return None, None, None
    exact = torch.full_like(top, float("nan"))
    rows = thin.squeeze(1).nonzero().squeeze(1)
    shifted = (z[rows].float() * inv_t - top[rows]).scatter_(-1, ids[rows], float("-inf"))
    exact[rows] = shifted.logsumexp(-1, keepdim=True)
    return exact, rows, shifted


def top_k_kd(student: Tensor, teacher: Tensor, kd: KDOptions, ws: Workspace, grad, scale):
    """KD over the teacher's top k tokens (summed over the chunk's rows), `scale` times its
    gradient with respect to the tempered student logits written into `grad` unless None.

    Tail mode: buckets k + 1 (the tail's mass), whose gradient is H_j at the top-k ids and
    q_i / Q_tail * H_tail = e_i / (the tail's exp sum) * H_tail on the tail's tokens (the
    normalisation cancels); on thin-tail rows, where e_i may have underflowed, through the
    exact shifted logits instead. Renormalize mode: a softmax over the k tokens alone."""
    rows, vocab = student.shape
    inv_t = 1.0 / kd.temperature
    found = top_k(teacher, kd.top_k)  # the order of teacher / T (T > 0)
    ids = found.indices
    if kd.top_k_mode == "renormalize":
        lp = from_log_probs((found.values.float() * inv_t).log_softmax(-1))
        lq = from_log_probs((student.gather(-1, ids).float() * inv_t).log_softmax(-1))
        loss, h, factor = divergence_terms(lp, lq, kd.kind, kd.beta, grad is not None)
        if grad is not None:
            grad.zero_().scatter_(-1, ids, h.mul_(scale * factor))
        return loss
    if kd.top_k_mode != "tail":
        raise ValueError(f"unknown kd_top_k_mode {kd.top_k_mode!r}")
    exps_t = ws.get("t_exp", rows, vocab)
    picked_t, top_t, tail_t, total_t = tail_exps(
        teacher, inv_t, ids, exps_t, found.values.amax(-1, keepdim=True)
    )
    exact_t, _, _ = exact_log_tails(teacher, inv_t, top_t, ids, tail_t < THIN_TAIL * total_t)
    exps_q = grad if grad is not None else ws.get("s_exp", rows, vocab)
    picked_q, top_q, tail_q, total_q = student_tail_exps(student, inv_t, ids, exps_q)
    thin = tail_q < THIN_TAIL * total_q
    exact_q, thin_rows, shifted = exact_log_tails(student, inv_t, top_q, ids, thin)
    lp = bucket_log_probs(picked_t, tail_t, total_t, exact_t)
    lq = bucket_log_probs(picked_q, tail_q, total_q, exact_q)
    loss, h, factor = divergence_terms(
        from_log_probs(lp), from_log_probs(lq), kd.kind, kd.beta, grad is not None
    )
    if grad is None:
        return loss
    h.mul_(scale * factor)
    h_tail = h[:, -1:]
    grad.mul_(torch.where(thin, 0.0, h_tail / tail_q))
    if thin_rows is not None:
        exact = shifted.sub_(exact_q[thin_rows].clamp(min=LOG_ZERO)).clamp_(max=0.0).exp_()
        grad[thin_rows] = exact.mul_(h_tail[thin_rows])
    grad.scatter_(-1, ids, h[:, :-1])
    return loss


def kd_terms(student: Tensor, teacher: Tensor, kd: KDOptions, ws: Workspace, grad, scale):
    """KD summed over one chunk's rows (logits `[c, V]`, any float dtype); writes `scale`
    times its gradient with respect to the tempered student logits into `grad` (fp32
    `[c, V]`) unless it is None."""
    if kd.top_k is None:
        return full_vocab_kd(student, teacher, kd, ws, grad, scale)
    return top_k_kd(student, teacher, kd, ws, grad, scale)


def ce_terms(student: Tensor, targets: Tensor, ws: Workspace, grad, scale: float):
    """Next-token CE summed over one chunk's rows; writes `scale` times its gradient,
    softmax - one_hot, into `grad` unless it is None (the exps are computed in place there)."""
    rows, width = student.shape
    exps = grad if grad is not None else ws.get("ce_exp", rows, width)
    shift_rows(student, 1.0, exps)
    picked = exps.gather(-1, targets[:, None]).mul_(LN_2)
    total = exps.exp2_().sum(-1, keepdim=True)
    loss = (total.log() - picked).sum()
    if grad is not None:
        grad.mul_(scale / total).scatter_add_(-1, targets[:, None], torch.full_like(picked, -scale))
    return loss


def chunk_terms(student, teacher, targets, spec: LogitsLossSpec, ws: Workspace, grad):
    """CE and KD summed over one chunk's rows (`student` `[c, width]`); writes their weighted
    gradient with respect to `student` into `grad` (fp32 `[c, width]`) unless it is None."""
    zero = torch.zeros((), device=student.device)
    ce = kd = zero
    written = False
    if spec.ce_weight > 0:
        ce = ce_terms(student, targets, ws, grad, spec.ce_weight)
        written = grad is not None
    if spec.kd_weight > 0:
        rows, vocab = student.shape[0], spec.kd_vocab
        columns = None if grad is None else grad[:, :vocab]
        # after CE the KD gradient goes to a buffer and is added: one more pass
        target = ws.get("kd_grad", rows, vocab) if written else columns
        scale = spec.kd_weight * spec.kd.loss_scale / spec.kd.temperature
        kd = kd_terms(student[:, :vocab], teacher, spec.kd, ws, target, scale)
        kd = kd * spec.kd.loss_scale
        if written:
            columns.add_(target)
        elif grad is not None:
            grad[:, vocab:].zero_()
            written = True
    if grad is not None and not written:
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


def chunk_rows_for(vocab: int, chunk_rows: int | None = None, kd: KDOptions | None = None) -> int:
    """Rows per chunk: `chunk_rows` if given, else as many as fit KD_CHUNK_ELEMENTS, times
    TOP_K_CHUNK_FACTOR for top-k KD."""
    if chunk_rows:
        return chunk_rows
    rows = max(1, KD_CHUNK_ELEMENTS // max(vocab, 1))
    return rows * TOP_K_CHUNK_FACTOR if kd is not None and kd.top_k is not None else rows


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
    rows_per_chunk = chunk_rows_for(kd_vocab, chunk_rows, kd)
    spec = LogitsLossSpec(kd, ce_weight, kd_weight, kd_vocab, rows_per_chunk)
    rows = mask.nonzero().squeeze(1)
    if kd_weight > 0:
        teacher = teacher.detach()
    if torch.is_grad_enabled() and student.requires_grad:
        return LogitsLoss(*_ChunkedLogitsLoss.apply(student, teacher, targets, rows, spec))
    ce, kd_sum = run_chunks(student, teacher, targets, rows, spec, None)
    return LogitsLoss(ce_weight * ce + kd_weight * kd_sum, ce, kd_sum)
