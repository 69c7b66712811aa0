"""The distillation losses: small pure functions on tensors, and `DistillationLoss` that
weighs them.

Every loss is a SUM over the micro-batch's valid tokens (label positions after the causal
shift that are not -100) divided by `denominator`, the valid tokens of the WHOLE accumulated
batch: summing the micro-batches' losses gives the accumulated batch's per-token mean, however
the tokens fall into micro-batches. An all-masked micro-batch sums nothing and gives 0.

Memory: the losses first gather the valid positions (`[N, V]` instead of `[B, L, V]`, so
padding costs nothing), and the docstrings count the `[N, V]` fp32 tensors kept for backward,
as `benchmarks/kd_loss_memory.py` measures them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer.models import attention_layer_pairs, resolve_layer_map

IGNORE_INDEX = -100
# Stands in for log(0) in the top-k tail bucket: exp(-1e4) is exactly 0 in fp32, and unlike
# -inf it keeps 0 * (log p - log q) at 0 instead of NaN.
LOG_ZERO = -1e4
PROB_FLOOR = 1e-12  # attention probabilities are clamped here before the log


def valid_positions(labels: Tensor) -> Tensor:
    """`[B, L-1]` bool: positions whose next-token label counts (labels[:, 1:] != -100)."""
    return labels[:, 1:] != IGNORE_INDEX


def count_valid_tokens(labels: Tensor) -> int:
    """Label positions that count after the causal shift; the loop sums it over a batch."""
    return int(valid_positions(labels).sum())


def gather_valid(per_position: Tensor, mask: Tensor) -> Tensor:
    """`[B, L, ...]` -> `[N, ...]`: the positions that predict a valid next label."""
    return per_position[:, :-1][mask]


def ce_sum(student_logits: Tensor, targets: Tensor) -> Tensor:
    """LM loss summed over tokens: `student_logits` `[N, V]`, `targets` `[N]` (all valid)."""
    return F.cross_entropy(student_logits.float(), targets, reduction="sum")


def tempered_log_softmax(logits: Tensor, temperature: float) -> Tensor:
    """fp32 log-probabilities at a temperature (low-precision logits lose the tail)."""
    return torch.log_softmax(logits.float() / temperature, dim=-1)


def divergence_sum(teacher_logp: Tensor, student_logp: Tensor, kind: str) -> Tensor:
    """Divergence between two distributions over the last dim (log-probabilities), summed over
    every position. `forward_kl` = KL(p_teacher || q_student) (mean-seeking, the classic KD);
    `reverse_kl` = KL(q || p) (mode-seeking); `jsd` = (KL(p || m) + KL(q || m)) / 2 with
    m = (p + q) / 2."""
    if kind == "forward_kl":
        return F.kl_div(student_logp, teacher_logp, log_target=True, reduction="sum")
    if kind == "reverse_kl":
        return F.kl_div(teacher_logp, student_logp, log_target=True, reduction="sum")
    if kind == "jsd":
        log_mix = torch.logaddexp(teacher_logp, student_logp) - math.log(2.0)
        kl_p = F.kl_div(log_mix, teacher_logp, log_target=True, reduction="sum")
        kl_q = F.kl_div(log_mix, student_logp, log_target=True, reduction="sum")
        return 0.5 * (kl_p + kl_q)
    raise ValueError(f"unknown kd_loss {kind!r}")


def kd_sum(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float,
    kind: str = "forward_kl",
    scale_t2: bool = True,
) -> Tensor:
    """Full-vocabulary KD summed over positions (`[N, V]` logits over the same vocabulary).

    `scale_t2` multiplies by T^2, as Hinton et al. and DistilBERT do, so that the soft-target
    gradients keep their size when T changes and the CE/KD weights mean the same at any T.
    TRL's GKD trainer and Liger's fused losses do NOT scale: to compare with them, turn it off.
    Kept for backward: the student's and the teacher's `[N, V]` fp32 log-probs (kl_div needs
    the target too); jsd keeps 5 such tensors (the mixture and logaddexp's inputs and output).
    """
    student_logp = tempered_log_softmax(student_logits, temperature)
    teacher_logp = tempered_log_softmax(teacher_logits, temperature)
    loss = divergence_sum(teacher_logp, student_logp, kind)
    return loss * temperature**2 if scale_t2 else loss


def log_complement(logp: Tensor, ids: Tensor) -> Tensor:
    """log(1 - sum of the probabilities at `ids`), stable: a logsumexp over the other tokens,
    never log(1 - p) on a sum that rounds to 1. Makes one masked `[N, V]` copy."""
    rest = logp.scatter(-1, ids, float("-inf")).logsumexp(dim=-1, keepdim=True)
    return rest.clamp(min=LOG_ZERO)  # k == V leaves no tail: log(0) stands in as LOG_ZERO


def top_k_buckets(logp: Tensor, ids: Tensor, mode: str) -> Tensor:
    """A distribution over the k tokens `ids` of a full-vocabulary `logp` (log-probs).

    `renormalize`: log p_i - logsumexp_k(log p) (the k probabilities rescaled to sum to 1).
    `tail`: the k log-probs unchanged plus a (k+1)-th bucket log(1 - sum_k p) holding the rest.
    Teacher and student get the same treatment; the student is normalised over the FULL
    vocabulary first, so the probability it gives outside the k tokens still costs it.
    """
    picked = logp.gather(-1, ids)
    if mode == "renormalize":
        return picked - picked.logsumexp(dim=-1, keepdim=True)
    if mode == "tail":
        return torch.cat([picked, log_complement(logp, ids)], dim=-1)
    raise ValueError(f"unknown kd_top_k_mode {mode!r}")


def top_k_kd_sum(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    k: int,
    mode: str,
    temperature: float,
    kind: str = "forward_kl",
    scale_t2: bool = True,
) -> Tensor:
    """KD over the teacher's top-k tokens per position (T^2 as in `kd_sum`); the divergence runs
    on `[N, k(+1)]`. Kept for backward: the student's `[N, V]` fp32 log-probs, plus in `tail`
    mode its masked copy (logsumexp saves it). The teacher's full log-probs (and its masked copy)
    live only until its buckets are gathered."""
    student_logp = tempered_log_softmax(student_logits, temperature)
    teacher_logp = tempered_log_softmax(teacher_logits, temperature)
    ids = teacher_logp.topk(k, dim=-1).indices
    teacher_buckets = top_k_buckets(teacher_logp, ids, mode)
    del teacher_logp  # the teacher's full log-probs are not needed for backward
    student_buckets = top_k_buckets(student_logp, ids, mode)
    loss = divergence_sum(teacher_buckets, student_buckets, kind)
    return loss * temperature**2 if scale_t2 else loss


def feature_sum(projected: Tensor, teacher_hidden: Tensor, kind: str) -> Tensor:
    """Hidden-state loss summed over tokens (`[N, H_teacher]` each): `mse` is the mean squared
    error over the hidden dim per token; `cosine` is 1 - cos(student, teacher) per token."""
    if kind == "mse":
        return (projected.float() - teacher_hidden.float()).pow(2).mean(dim=-1).sum()
    if kind == "cosine":
        cos = F.cosine_similarity(projected.float(), teacher_hidden.float(), dim=-1)
        return (1.0 - cos).sum()
    raise ValueError(f"unknown feature_loss {kind!r}")


def attention_kl_sum(student_attn: Tensor, teacher_attn: Tensor) -> Tensor:
    """KL(teacher row || student row) of attention probabilities `[N, heads, keys]`, averaged
    over heads and summed over the N query rows.

    Both rows are renormalised over the keys the student kept: transformers returns attention
    maps AFTER attention dropout, which in training zeroes some keys and scales the rest by
    1/(1-p); compared as is, every dropped key would add ~p log(1/PROB_FLOOR) of pure noise.
    Without dropout the kept keys are the causal ones and the renormalisation changes nothing.
    Keys neither attends to (causal mask, padding) add exactly 0.
    """
    q = student_attn.float()
    kept = q > 0
    p = teacher_attn.float() * kept
    p = p / p.sum(dim=-1, keepdim=True).clamp(min=PROB_FLOOR)
    q = q / q.sum(dim=-1, keepdim=True).clamp(min=PROB_FLOOR)
    per_key = p * (p.clamp(min=PROB_FLOOR).log() - q.clamp(min=PROB_FLOOR).log())
    return per_key.sum(dim=-1).mean(dim=-1).sum()


class DistillationLoss(nn.Module):
    """The weighted total of the enabled losses (weight > 0), and each component unweighted.

    Holds the learned feature projections (student hidden size -> teacher hidden size, one
    `nn.Linear` per mapped layer pair): the loop optimises them with the student and saves their
    state_dict beside it. Layer indices count transformer blocks from 0; block i's output is
    `hidden_states[i + 1]` (index 0 is the embeddings). Feature and attention losses average
    over their mapped layers, so their size does not grow with the number of layers.
    """

    def __init__(
        self, cfg: TrainConfig, student_config: Any, teacher_config: Any, kd_vocab_size: int
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.kd_vocab_size = kd_vocab_size
        if cfg.kd_top_k is not None and cfg.kd_top_k > kd_vocab_size:
            raise InputError(
                f"kd_top_k is {cfg.kd_top_k} but the vocabulary KD runs over has only "
                f"{kd_vocab_size} tokens; lower kd_top_k, or unset it for full-vocabulary KD."
            )
        n_student = student_config.num_hidden_layers
        n_teacher = teacher_config.num_hidden_layers
        needs_map = cfg.feature_weight > 0 or cfg.attention_weight > 0
        pairs = resolve_layer_map(cfg.layer_map, n_student, n_teacher) if needs_map else []
        self.feature_pairs = pairs if cfg.feature_weight > 0 else []
        self.projections = nn.ModuleList(
            nn.Linear(student_config.hidden_size, teacher_config.hidden_size)
            for _ in self.feature_pairs
        )
        self.attention_pairs = (
            attention_layer_pairs(cfg, pairs, student_config, teacher_config)
            if cfg.attention_weight > 0
            else []
        )

    @property
    def needs_hidden_states(self) -> bool:
        return self.cfg.feature_weight > 0

    @property
    def needs_attentions(self) -> bool:
        return self.cfg.attention_weight > 0

    def forward(
        self, student_out: Any, teacher_out: Any, labels: Tensor, denominator: float
    ) -> dict[str, Tensor]:
        cfg = self.cfg
        mask = valid_positions(labels)
        student_logits = gather_valid(student_out.logits, mask)  # [N, V_student]
        parts: dict[str, Tensor] = {}
        if cfg.ce_weight > 0:
            parts["ce"] = ce_sum(student_logits, labels[:, 1:][mask]) / denominator
        if cfg.kd_weight > 0:
            teacher_logits = gather_valid(teacher_out.logits.detach(), mask)
            parts["kd"] = self.kd(student_logits, teacher_logits) / denominator
        if cfg.feature_weight > 0:
            parts["feature"] = self.feature(student_out, teacher_out, mask) / denominator
        if cfg.attention_weight > 0:
            parts["attention"] = self.attention(student_out, teacher_out, mask) / denominator
        weights = {
            "ce": cfg.ce_weight,
            "kd": cfg.kd_weight,
            "feature": cfg.feature_weight,
            "attention": cfg.attention_weight,
        }
        total = sum(
            (weights[name] * value for name, value in parts.items()),
            student_logits.new_zeros((), dtype=torch.float32),
        )
        return {"loss": total, **parts}

    def kd(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """KD over the shared vocabulary: padded embedding rows beyond it are cut off."""
        cfg = self.cfg
        student_logits = student_logits[:, : self.kd_vocab_size]
        teacher_logits = teacher_logits[:, : self.kd_vocab_size]
        options = dict(temperature=cfg.temperature, kind=cfg.kd_loss, scale_t2=cfg.kd_scale_t2)
        if cfg.kd_top_k is None:
            return kd_sum(student_logits, teacher_logits, **options)
        return top_k_kd_sum(
            student_logits, teacher_logits, k=cfg.kd_top_k, mode=cfg.kd_top_k_mode, **options
        )

    def feature(self, student_out: Any, teacher_out: Any, mask: Tensor) -> Tensor:
        total = mask.new_zeros((), dtype=torch.float32)
        for (s, t), projection in zip(self.feature_pairs, self.projections, strict=True):
            student_hidden = gather_valid(student_out.hidden_states[s + 1], mask)
            teacher_hidden = gather_valid(teacher_out.hidden_states[t + 1].detach(), mask)
            projected = projection(student_hidden.to(projection.weight.dtype))
            total = total + feature_sum(projected, teacher_hidden, self.cfg.feature_loss)
        return total / len(self.feature_pairs)

    def attention(self, student_out: Any, teacher_out: Any, mask: Tensor) -> Tensor:
        total = mask.new_zeros((), dtype=torch.float32)
        for s, t in self.attention_pairs:
            # [B, heads, queries, keys] -> [B, queries, heads, keys]: rows indexed like tokens
            student_rows = gather_valid(student_out.attentions[s].transpose(1, 2), mask)
            teacher_rows = gather_valid(teacher_out.attentions[t].detach().transpose(1, 2), mask)
            total = total + attention_kl_sum(student_rows, teacher_rows)
        return total / len(self.attention_pairs)
