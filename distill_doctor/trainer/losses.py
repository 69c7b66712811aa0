"""The distillation losses: small pure functions on tensors, and `DistillationLoss` that
weighs them.

Every loss is a SUM over the micro-batch's valid tokens (label positions after the causal
shift that are not -100) divided by `denominator`, the valid tokens of the WHOLE accumulated
batch: summing the micro-batches' losses gives the accumulated batch's per-token mean, however
the tokens fall into micro-batches. An all-masked micro-batch sums nothing and gives 0.

The CE and KD functions here are the straightforward reference, kept as the test oracle:
they gather the valid positions (`[N, V]`) and keep the `[N, V]` fp32 tensors their
docstrings count for backward. `DistillationLoss` runs the same losses through
`kd_chunked.logits_loss`, which never holds more than a chunk of rows in fp32;
`benchmarks/kd_loss.py` measures both.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer.kd_chunked import LOG_ZERO, KDOptions, LogitsLoss, logits_loss
from distill_doctor.trainer.kd_fused import HeadlessOutput, TeacherHead, fused_logits_loss
from distill_doctor.trainer.models import attention_layer_pairs, resolve_layer_map

IGNORE_INDEX = -100
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


def divergence_sum(
    teacher_logp: Tensor, student_logp: Tensor, kind: str, beta: float = 0.5
) -> Tensor:
    """Divergence between two distributions over the last dim (log-probabilities), summed over
    every position. `forward_kl` = KL(p_teacher || q_student) (mean-seeking, the classic KD);
    `reverse_kl` = KL(q || p) (mode-seeking); `jsd` = beta KL(p || m) + (1 - beta) KL(q || m)
    with m = beta p + (1 - beta) q (the generalised JSD of Agarwal et al. 2024 and TRL's
    generalized_jsd_loss; beta 0.5 is the symmetric JSD)."""
    if kind == "forward_kl":
        return F.kl_div(student_logp, teacher_logp, log_target=True, reduction="sum")
    if kind == "reverse_kl":
        return F.kl_div(teacher_logp, student_logp, log_target=True, reduction="sum")
    if kind == "jsd":
        # log(beta p + (1 - beta) q), arranged to be exactly log((p + q) / 2) at beta 0.5
        log_mix = torch.logaddexp(teacher_logp + math.log(beta / (1.0 - beta)), student_logp)
        log_mix = log_mix + math.log1p(-beta)
        kl_p = F.kl_div(log_mix, teacher_logp, log_target=True, reduction="sum")
        kl_q = F.kl_div(log_mix, student_logp, log_target=True, reduction="sum")
        return beta * kl_p + (1.0 - beta) * kl_q
    raise ValueError(f"unknown kd_loss {kind!r}")


def kd_sum(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float,
    kind: str = "forward_kl",
    scale_t2: bool = True,
    beta: float = 0.5,
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
    loss = divergence_sum(teacher_logp, student_logp, kind, beta)
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
    beta: float = 0.5,
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
    loss = divergence_sum(teacher_buckets, student_buckets, kind, beta)
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
        parts: dict[str, Tensor] = {}
        total = labels.new_zeros((), dtype=torch.float32)
        if cfg.ce_weight > 0 or cfg.kd_weight > 0:
            logits = self.logits_loss(student_out, teacher_out, labels)
            total = total + logits.total / denominator
            if cfg.ce_weight > 0:
                parts["ce"] = logits.ce / denominator
            if cfg.kd_weight > 0:
                parts["kd"] = logits.kd / denominator
        if cfg.feature_weight > 0:
            parts["feature"] = self.feature(student_out, teacher_out, mask) / denominator
        if cfg.attention_weight > 0:
            parts["attention"] = self.attention(student_out, teacher_out, mask) / denominator
        if "feature" in parts:
            total = total + cfg.feature_weight * parts["feature"]
        if "attention" in parts:
            total = total + cfg.attention_weight * parts["attention"]
        return {"loss": total, **parts}

    def logits_loss(self, student_out: Any, teacher_out: Any, labels: Tensor) -> LogitsLoss:
        """CE and KD in row chunks over the `[B * L, V]` logits as they are (no gathered
        copies); KD over the shared vocabulary, padded embedding rows beyond it cut off. A
        model run without its lm_head (`kd_fused_lm_head`) gives its last hidden state and
        head instead, and the fused loss computes its logits a block at a time."""
        cfg = self.cfg
        # Row b * L + t predicts labels[b, t + 1]; each sequence's last row predicts nothing.
        targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX).flatten()
        options = dict(
            kd=KDOptions(
                kind=cfg.kd_loss,
                temperature=cfg.temperature,
                scale_t2=cfg.kd_scale_t2,
                beta=cfg.kd_jsd_beta,
                top_k=cfg.kd_top_k,
                top_k_mode=cfg.kd_top_k_mode,
            ),
            ce_weight=cfg.ce_weight,
            kd_weight=cfg.kd_weight,
            kd_vocab=self.kd_vocab_size,
            chunk_rows=cfg.kd_chunk_size,
        )
        teacher = None
        if cfg.kd_weight > 0 and isinstance(teacher_out, HeadlessOutput):
            hidden = teacher_out.last_hidden.flatten(0, 1)
            teacher = TeacherHead(hidden, teacher_out.weight, teacher_out.bias)
        elif cfg.kd_weight > 0:
            teacher = teacher_out.logits.flatten(0, 1)
        if isinstance(student_out, HeadlessOutput):
            hidden = student_out.last_hidden.flatten(0, 1)
            head = (student_out.weight, student_out.bias)
            return fused_logits_loss(hidden, *head, teacher, targets.clamp(min=0),
                                     targets != IGNORE_INDEX, **options)  # fmt: skip
        student = student_out.logits.flatten(0, 1)
        return logits_loss(student, teacher, targets.clamp(min=0), targets != IGNORE_INDEX,
                           **options)  # fmt: skip

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
