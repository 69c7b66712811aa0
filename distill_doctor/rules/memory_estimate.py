"""Memory estimate of a distillation step: pure arithmetic over the config and model facts.

Used as evidence by `full-vocab-kd-memory` and `memory-over-budget`. Every number is bytes; the
rules show GiB. It is an estimate of what PyTorch really holds at the peak (end of the student
forward / start of its backward), not an upper bound: the CUDA context (~0.3-0.5 GiB) and the
caching allocator's fragmentation come on top, which is why the budget rule warns at 90%.
"""

from __future__ import annotations

from distill_doctor.config.schema import KD_CHUNK_ELEMENTS, KD_FUSED_BLOCK_ELEMENTS, TrainConfig
from distill_doctor.rules.base import ModelFacts, RunFacts

GIB = 1024**3
FP32 = 4
INT64 = 8
ADAMW_MOMENTS = 2 * FP32  # exp_avg and exp_avg_sq, fp32 whatever the training precision
MASTER_WEIGHTS = FP32  # mixed precision keeps an fp32 copy of the weights it updates
# Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
# eq. 1: one layer keeps s*b*h*(34 + 5*a*s/h) bytes of 16-bit activations for its backward
# (no recomputation, no parallelism; includes the dropout masks and the attention scores).
ACTIVATION_BYTES_PER_TOKEN_HIDDEN = 34
ATTENTION_SCORE_BYTES = 5


def training_bytes(cfg: TrainConfig) -> int:
    """Bytes per element of weights and activations in the training precision."""
    return 2 if cfg.fp16 or cfg.bf16 else FP32


# The chunked loss's fp32 [chunk, V] buffers alive at once, measured with
# `benchmarks/kd_loss.py` (peak minus the gradient buffer): 8 for forward KL and top-k, 9 for
# JSD; the larger is taken.
CHUNK_BUFFERS = 9


def logits_copies(cfg: TrainConfig, with_kd: bool = True, chunked: bool = True) -> dict[str, int]:
    """The vocabulary-wide tensors a KD step keeps alive at its peak, bytes per element each.

    `chunked`: distill_doctor's trainer (`trainer/kd_chunked.py`): the two models' logits and
    one gradient buffer shaped like the student's (its dtype; fp32 under fp16, where small
    gradients would flush to 0 before the loss scale); CE and KD, full or top-k, run in
    chunks of rows and add only `chunk_workspace`. Otherwise a straightforward loss:
    under autocast the models emit logits in the training precision, while softmax,
    log_softmax and the KL run in fp32 (autocast's fp32 list), so their copies are fp32.
    """
    half = training_bytes(cfg)
    if chunked:
        copies = {"student_logits": half, "logits_grad": FP32 if cfg.fp16 else half}
        if with_kd:
            copies["teacher_logits"] = half
        return copies
    copies = {
        "student_logits": half,  # the student's output, kept for the backward
        "student_logits_grad": FP32,  # the gradient flowing back through log_softmax
    }
    if cfg.ce_weight > 0 or not with_kd:
        copies["ce_log_probs"] = FP32  # cross-entropy's own log_softmax, saved by autograd
    if with_kd:
        copies["teacher_logits"] = half  # the teacher's output, alive until the loss is built
        copies["teacher_soft_targets"] = FP32  # softmax(teacher / T)
        copies["student_log_probs"] = FP32  # log_softmax(student / T), saved by autograd
        copies["kl_pointwise"] = FP32  # F.kl_div builds p * (log p - log q) before reducing
    return copies


# With a straightforward loss, the copies that shrink to k columns with kd_top_k: the
# teacher side and the KL terms. The student's own logits, their gradient and its log-softmax
# stay vocabulary-wide (the tail of the student's distribution still needs its full
# normaliser). The chunked loss narrows nothing: the models emit full logits either way.
TOP_K_NARROWED = ("teacher_logits", "teacher_soft_targets", "kl_pointwise")


def chunk_rows(cfg: TrainConfig, vocab_size: int) -> int:
    return cfg.kd_chunk_size or max(1, KD_CHUNK_ELEMENTS // vocab_size)


def chunk_workspace(cfg: TrainConfig, vocab_size: int) -> int:
    """Bytes of the chunked loss's fp32 chunk buffers: a constant, whatever the batch."""
    rows = min(chunk_rows(cfg, vocab_size), cfg.batch_size * cfg.max_length)
    return CHUNK_BUFFERS * rows * vocab_size * FP32


def fused_head_memory(
    cfg: TrainConfig, vocab_size: int, hidden_size: int, with_kd: bool = True
) -> dict[str, int]:
    """Bytes of the fused lm_head loss (`kd_fused_lm_head`, `trainer/kd_fused.py`): neither
    model's `[B, L, V]` logits exist, only one block of rows' (the student's in the training
    precision and their fp32 gradient, the teacher's), the chunk buffers, and the fp32
    gradients the loss hands back: the hidden state's, and the lm_head's `[V, H]`, which is
    the weight's own gradient in fp32 training; in 16 bits it is an extra fp32 copy, beside
    an fp32 copy of the head's weight for the gradient matmuls."""
    tokens = cfg.batch_size * cfg.max_length
    rows = min(tokens, max(chunk_rows(cfg, vocab_size), KD_FUSED_BLOCK_ELEMENTS // vocab_size))
    half = training_bytes(cfg)
    memory = {
        "block_logits": rows * vocab_size * half,
        "block_logits_grad": rows * vocab_size * FP32,
        "hidden_grad": tokens * hidden_size * FP32,
        "lm_head_fp32": 2 * vocab_size * hidden_size * FP32 if half == 2 else 0,
        "chunk_workspace": chunk_workspace(cfg, vocab_size),
    }
    if with_kd:
        memory["teacher_block_logits"] = rows * vocab_size * half
    return memory


def logits_memory(
    cfg: TrainConfig,
    vocab_size: int,
    top_k: int | None = None,
    with_kd: bool = True,
    chunked: bool = True,
) -> dict[str, int]:
    """Bytes of each vocabulary-wide copy for one micro-batch (batch x length tokens)."""
    tokens = cfg.batch_size * cfg.max_length
    memory = {}
    for name, element_bytes in logits_copies(cfg, with_kd, chunked).items():
        narrowed = not chunked and top_k is not None and name in TOP_K_NARROWED
        memory[name] = tokens * (min(top_k, vocab_size) if narrowed else vocab_size)
        memory[name] *= element_bytes
    if chunked:
        memory["chunk_workspace"] = chunk_workspace(cfg, vocab_size)
    elif with_kd and top_k is not None:
        memory["teacher_top_k_indices"] = tokens * min(top_k, vocab_size) * INT64
    return memory


def activation_memory(cfg: TrainConfig, model: ModelFacts, run: RunFacts | None = None) -> int:
    """Activations the student keeps for its backward; the teacher runs under no_grad, so its
    activations are freed layer by layer and do not add up. Flash/SDPA attention keeps no
    s x s score matrix; with activation checkpointing each layer keeps only its input (2 bytes
    per token and hidden unit) and one layer's activations are rebuilt at a time."""
    run = run or RunFacts()
    s, b, h, a = cfg.max_length, cfg.batch_size, model.hidden_size, model.num_heads
    per_layer_16bit = s * b * h * ACTIVATION_BYTES_PER_TOKEN_HIDDEN
    if not run.memory_efficient_attention:
        per_layer_16bit += ATTENTION_SCORE_BYTES * a * s * s * b
    scale = training_bytes(cfg) / 2  # the constants are for 16-bit activations
    if run.activation_checkpointing:
        return int((model.num_layers * s * b * h * 2 + per_layer_16bit) * scale)
    return int(model.num_layers * per_layer_16bit * scale)


# An adapter whose rank the file does not give: 16 is the common choice (PEFT's default is 8).
DEFAULT_ADAPTER_RANK = 16


def trainable_params(student: ModelFacts, run: RunFacts) -> int:
    """Parameters the optimizer updates: all of them, or a LoRA adapter's. The adapter is
    counted on every linear layer of every block (q, k, v, o, gate, up, down: an upper bound,
    since configs often target fewer), r x (in + out) each."""
    if not run.adapter:
        return student.num_params
    rank = run.adapter_rank or DEFAULT_ADAPTER_RANK
    d = student.hidden_size
    ffn = student.intermediate_size or 4 * d
    per_layer = rank * (4 * (d + d) + 3 * (d + ffn))
    return student.num_layers * per_layer


def frozen_weight_bytes(cfg: TrainConfig, run: RunFacts) -> float:
    """Bytes per parameter of the student's base weights: 4-bit (QLoRA) or 8-bit when the file
    quantizes them, else the training precision."""
    return run.weight_bits / 8 if run.weight_bits else training_bytes(cfg)


def peak_training_memory(
    cfg: TrainConfig,
    student: ModelFacts,
    teacher: ModelFacts | None,
    vocab_size: int,
    with_kd: bool = True,
    run: RunFacts | None = None,
    chunked: bool = True,
) -> dict[str, int]:
    """Peak bytes of one training step, broken down; "total" is the sum of the rest.
    `chunked`: the logits as distill_doctor's trainer keeps them (see `logits_copies`), or
    with `kd_fused_lm_head` as its fused loss does (`fused_head_memory`).

    Student: weights and gradients in the training precision, AdamW's two fp32 moments, and an
    fp32 master copy when training in 16 bits: 16 bytes per parameter in every precision (torch
    AMP instead keeps fp32 weights and gradients: 4 + 4 + 8, the same 16). Teacher: frozen
    weights only, in the training precision. Plus the logits copies and the activations.
    """
    run = run or RunFacts()
    half = training_bytes(cfg)
    master = MASTER_WEIGHTS if half == 2 else 0
    trainable = trainable_params(student, run)
    adapter_weights = trainable * half if run.adapter else 0
    breakdown = {
        "teacher_weights": teacher.num_params * half if teacher and with_kd else 0,
        "student_weights": int(student.num_params * frozen_weight_bytes(cfg, run))
        + adapter_weights,
        "student_gradients": trainable * half,
        "optimizer_state": trainable * (ADAMW_MOMENTS + master),
        "logits": sum(logits_memory(cfg, vocab_size, cfg.kd_top_k, with_kd, chunked).values()),
        "activations": activation_memory(cfg, student, run),
    }
    if chunked and cfg.kd_fused_lm_head:
        fused = fused_head_memory(cfg, vocab_size, student.hidden_size, with_kd)
        breakdown["logits"] = sum(fused.values())
    breakdown["total"] = sum(breakdown.values())
    return breakdown


def gib(num_bytes: float) -> float:
    """Bytes as GiB, rounded for evidence tables."""
    return round(num_bytes / GIB, 3)
