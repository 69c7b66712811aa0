"""CE and KD with the student's lm_head fused in: the student's `[N, V]` logits never exist.

`kd_chunked.logits_loss` still needs both models' full logits and a gradient buffer as large
as the student's. Here the loss takes the student's last hidden state `[N, H]` and its lm_head
(weight `[V, H]`, bias optional) and walks the valid rows a block at a time: logits = h @ W^T
for the block only, CE and KD and their gradient g with respect to those logits in closed form
(`kd_chunked.chunk_terms`, in chunks of the block), then grad_h = g @ W and grad_W += g^T h.
The teacher's logits come as a tensor, or, when the teacher runs in the same process, as its
hidden state and lm_head (`TeacherHead`), so that neither model's full logits exist. Backward
only scales the gradients forward computed. Liger-Kernel's fused linear cross-entropy and JSD
do the same on the GPU.

Extra memory: the block's logits and their gradient (fp32), the teacher's block logits, the
chunk buffers, and grad_h / grad_W, which training needs anyway. `forward_without_lm_head`
runs a Hugging Face causal LM with its lm_head left out, for the trainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from distill_doctor.config.schema import KD_FUSED_BLOCK_ELEMENTS
from distill_doctor.errors import InputError
from distill_doctor.trainer.kd_chunked import (
    KDOptions,
    LogitsLoss,
    LogitsLossSpec,
    Workspace,
    chunk_rows_for,
    chunk_terms,
    row_runs,
    run_start,
    take,
)


class TeacherHead(NamedTuple):
    """The teacher's logits as its last hidden state `[R, H_t]` and lm_head: computed a block
    of rows at a time, never all at once."""

    hidden: Tensor
    weight: Tensor
    bias: Tensor | None = None


def linear(hidden: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return torch.nn.functional.linear(hidden, weight, bias)


def block_rows_for(vocab: int, chunk_rows: int) -> int:
    """Rows per block: as many as fit KD_FUSED_BLOCK_ELEMENTS (a block reads all of W^T once
    per matmul, so small blocks would spend their time rereading it), at least one chunk."""
    return max(chunk_rows, KD_FUSED_BLOCK_ELEMENTS // max(vocab, 1))


def teacher_block(teacher: Tensor | TeacherHead | None, first, idx, kd_vocab: int):
    """The teacher's logits for a block's rows, when they come from its head (given logits
    are read a chunk at a time instead: a block's copy would be a block-sized buffer)."""
    if not isinstance(teacher, TeacherHead):
        return None
    weight = teacher.weight[:kd_vocab]
    bias = None if teacher.bias is None else teacher.bias[:kd_vocab]
    return linear(take(teacher.hidden, first, idx), weight, bias)


def teacher_chunk(teacher, block_logits, idx: Tensor, host_ids: Tensor, part: slice, kd_vocab):
    if teacher is None:
        return None
    if block_logits is not None:
        return block_logits[part]
    return take(teacher, run_start(host_ids[part]), idx[part])[:, :kd_vocab]


@dataclass
class Gradients:
    hidden: Tensor  # [R, H], fp32: the rows `rows` does not name stay 0
    weight: Tensor  # [V, H], fp32
    bias: Tensor | None  # [V], fp32


def run_blocks(
    hidden, weight, bias, teacher, targets, rows, spec: LogitsLossSpec, grads, block_rows
):
    """CE and KD summed over `rows`, `block_rows` rows at a time (each block in chunks of
    `spec.chunk_rows`); adds the weighted gradients into `grads` unless it is None."""
    ce_total = torch.zeros((), dtype=torch.float64, device=hidden.device)
    kd_total = torch.zeros((), dtype=torch.float64, device=hidden.device)
    vocab = weight.shape[0]
    ws = Workspace(min(spec.chunk_rows, rows.numel()), hidden.device)
    block_grad = weight32 = None
    if grads is not None:
        block_grad = torch.empty(min(block_rows, rows.numel()), vocab, device=hidden.device)
        weight32 = weight.float()  # one fp32 copy for 16-bit heads, not one per block
    for first, idx, host_ids in row_runs(rows, block_rows):
        h = take(hidden, first, idx)
        logits = linear(h, weight, bias)
        teacher_logits = teacher_block(teacher, first, idx, spec.kd_vocab)
        block_targets = take(targets, first, idx)
        grad = None if block_grad is None else block_grad[: idx.numel()]
        for start in range(0, idx.numel(), spec.chunk_rows):
            part = slice(start, start + spec.chunk_rows)
            ce, kd = chunk_terms(
                logits[part],
                teacher_chunk(teacher, teacher_logits, idx, host_ids, part, spec.kd_vocab),
                block_targets[part],
                spec,
                ws,
                None if grad is None else grad[part],
            )
            ce_total += ce
            kd_total += kd
        del logits, teacher_logits
        if grads is None:
            continue
        grad_h = grad @ weight32
        if first is not None:
            grads.hidden.narrow(0, first, idx.numel()).copy_(grad_h)
        else:
            grads.hidden.index_copy_(0, idx, grad_h)
        grads.weight.addmm_(grad.T, h.float())
        if grads.bias is not None:
            grads.bias += grad.sum(0)
    return ce_total.float(), kd_total.float()


class _FusedLinearLogitsLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, teacher, targets, rows, spec, block_rows):
        device = hidden.device
        grads = Gradients(
            hidden=torch.zeros(hidden.shape, device=device),
            weight=torch.zeros(weight.shape, device=device),
            bias=None if bias is None else torch.zeros(bias.shape, device=device),
        )
        ce, kd = run_blocks(hidden, weight, bias, teacher, targets, rows, spec, grads, block_rows)
        # Held on ctx, not saved for backward: backward hands the buffers over, and a leaf's
        # AccumulateGrad may then keep them as .grad instead of copying them.
        ctx.grads = grads
        ctx.mark_non_differentiable(ce, kd)
        return spec.ce_weight * ce + spec.kd_weight * kd, ce, kd

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total, _grad_ce, _grad_kd):
        grads = ctx.grads
        del ctx.grads
        if not torch.equal(grad_total, torch.ones_like(grad_total)):
            for grad in (grads.hidden, grads.weight, grads.bias):  # ours: scaled in place
                if grad is not None:
                    grad.mul_(grad_total)
        # autograd casts each gradient to its input's dtype
        return grads.hidden, grads.weight, grads.bias, None, None, None, None, None


def fused_logits_loss(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    teacher: Tensor | TeacherHead | None,
    targets: Tensor,
    mask: Tensor,
    *,
    kd: KDOptions,
    ce_weight: float,
    kd_weight: float,
    kd_vocab: int | None = None,
    chunk_rows: int | None = None,
    block_rows: int | None = None,
) -> LogitsLoss:
    """`kd_chunked.logits_loss` of the logits `hidden @ weight^T + bias`, without them:
    `hidden` `[R, H]`, `weight` `[V, H]`, `bias` `[V]` or None; `teacher` the teacher's
    logits `[R, V_t]` or its `TeacherHead` (None without KD); `targets` and `mask` `[R]`.
    Gradients reach `hidden`, `weight` and `bias`; masked rows are never read. `block_rows`:
    rows per matmul block (default `block_rows_for`), a multiple of the chunk's at best."""
    if kd_weight > 0 and teacher is None:
        raise ValueError("KD needs the teacher's logits or its hidden state and lm_head")
    kd_vocab = kd_vocab or weight.shape[0]
    spec = LogitsLossSpec(
        kd, ce_weight, kd_weight, kd_vocab, chunk_rows_for(kd_vocab, chunk_rows, kd)
    )
    rows = mask.nonzero().squeeze(1)
    block_rows = block_rows or block_rows_for(weight.shape[0], spec.chunk_rows)
    if isinstance(teacher, TeacherHead):
        teacher = TeacherHead(*(None if t is None else t.detach() for t in teacher))
    elif teacher is not None:
        teacher = teacher.detach()
    needs_grad = any(t is not None and t.requires_grad for t in (hidden, weight, bias))
    if torch.is_grad_enabled() and needs_grad:
        args = (hidden, weight, bias, teacher, targets, rows, spec, block_rows)
        return LogitsLoss(*_FusedLinearLogitsLoss.apply(*args))
    with torch.no_grad():
        ce, kd_sum = run_blocks(
            hidden, weight, bias, teacher, targets, rows, spec, None, block_rows
        )
    return LogitsLoss(ce_weight * ce + kd_weight * kd_sum, ce, kd_sum)


# --- the trainer's side: a Hugging Face causal LM run without its lm_head ------------------


@dataclass
class HeadlessOutput:
    """A causal LM's output with its lm_head left out: the head's input and the head."""

    last_hidden: Tensor  # [B, L, H]
    weight: Tensor  # [V, H]
    bias: Tensor | None
    hidden_states: Any = None
    attentions: Any = None
    logits: None = None  # never computed


# Configs whose models change the logits after lm_head (Gemma 2's soft cap, Cohere's scale):
# the fused loss would see the head's plain output, so they are refused.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")


def plain_lm_head(model: nn.Module) -> nn.Linear:
    """The model's lm_head, if its logits are nothing but that head's output."""
    config = getattr(model, "config", None)
    changed = [key for key in LOGIT_TRANSFORMS if getattr(config, key, None) not in (None, 1)]
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if changed or not isinstance(head, nn.Linear):
        what = (
            f"transforms its logits after lm_head ({', '.join(changed)})"
            if changed
            else ("has no nn.Linear lm_head")
        )
        raise InputError(
            f"kd_fused_lm_head: {type(model).__name__} {what}, so its logits cannot be computed "
            "from its last hidden state in the loss; set kd_fused_lm_head: false."
        )
    return head


@contextlib.contextmanager
def lm_head_left_out(model: nn.Module) -> Iterator[nn.Linear]:
    """Within: `model`'s lm_head is an identity, so the model's "logits" are its last hidden
    state. The head itself (and its tied weight) stays the model's: its gradient comes from
    the fused loss."""
    inner = getattr(model, "module", model)  # DistributedDataParallel holds the model
    head = plain_lm_head(inner)
    inner.set_output_embeddings(nn.Identity())
    try:
        yield head
    finally:
        inner.set_output_embeddings(head)


def forward_without_lm_head(model: nn.Module, **inputs: Any) -> HeadlessOutput:
    """Run `model` (a causal LM, or DistributedDataParallel around one) on `inputs` with its
    lm_head left out."""
    with lm_head_left_out(model) as head:
        out = model(**inputs)
    return HeadlessOutput(
        out.logits, head.weight, head.bias, out.get("hidden_states"), out.get("attentions")
    )
