"""full-vocab-kd-memory: KD over the full vocabulary where the logits copies a straightforward
loss keeps take a large share of the GPU.

The share is judged for the straightforward loss most KD scripts run (the seed's, TRL's
generalized_jsd_loss): distill_doctor's own trainer runs a chunked loss that keeps far less
(`memory_estimate.logits_copies`), and the evidence says how much."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext
from distill_doctor.rules.kd_scope import kd_in_play
from distill_doctor.rules.memory_estimate import GIB, gib, logits_copies, logits_memory

# Without --gpu, judge against the smallest common training card (P100, T4, V100: 16 GB):
# a config that is fine there is fine everywhere.
DEFAULT_GPU_GB = 16.0
# 5% of the card: more than a 124M-parameter student's fp16 weights twice over on a 16 GB
# card, for tensors that a top-k KD shrinks to almost nothing on the teacher side.
SHARE_THRESHOLD = 0.05
SUGGESTED_TOP_K = 256  # the teacher's top 256 tokens hold nearly all of its probability mass

DOC = RuleDoc(
    id="full-vocab-kd-memory",
    code="DD104",
    kind="config",
    keys=("kd_top_k", "max_length", "batch_size"),
    severity=Severity.WARNING,
    summary="KD over the full vocabulary (kd_top_k null) whose logits copies take 5% or more "
    "of the GPU.",
    why="A KD step keeps several batch x length x vocab tensors alive at once: the teacher's "
    "and the student's logits, the teacher's soft targets, the student's log-softmax, the "
    "pointwise KL, the logits' gradient and cross-entropy's log-softmax. At a 50k-150k "
    "vocabulary they grow faster than anything else with batch and length. Without --gpu the "
    "share is taken of a 16 GB card, the smallest common one. A chunked loss (distill_doctor's "
    "trainer, Liger-Kernel, torchtune) keeps only the two models' logits and one gradient.",
    fix="Set kd_top_k (256 keeps nearly all of the teacher's mass): the teacher-side copies "
    "shrink from the vocabulary to k columns. Or train with a chunked KD loss, as "
    "`doctor train` does by default.",
    fix_available="always",
    example='{"batch_size": 2, "max_length": 384, "kd_top_k": null, "student_model": "gpt2"}',
)


def _vocab_source(ctx: CheckContext) -> str:
    if ctx.config.vocab_size is not None:
        return "config vocab_size"
    facts = ctx.student or ctx.teacher
    return f"{facts.name} ({facts.source})" if facts else "unknown"


def check(ctx: CheckContext) -> list[Finding]:
    cfg, vocab = ctx.config, ctx.vocab_size
    if not kd_in_play(ctx) or cfg.kd_top_k is not None or vocab is None:
        return []
    if ctx.run.teacher_signal != "online":
        return []  # the teacher's top-k or precomputed signal: no teacher logits in the step
    if ctx.dialect == "native" and cfg.kd_fused_lm_head:
        return []  # the bundled trainer's fused loss: neither model's logits ever exist
    if ctx.dialect != "native" and not ctx.is_given("max_length"):
        return []  # the sequence length is the dataset's: unknown (a coverage line says so)
    gpu_gb = ctx.gpu.memory_gb if ctx.gpu else DEFAULT_GPU_GB
    full = sum(logits_memory(cfg, vocab, chunked=False).values())
    share = full / (gpu_gb * GIB)
    if share < SHARE_THRESHOLD or vocab <= SUGGESTED_TOP_K:
        return []
    saved = full - sum(logits_memory(cfg, vocab, SUGGESTED_TOP_K, chunked=False).values())
    chunked = sum(logits_memory(cfg, vocab).values())
    gpu_name = ctx.gpu.name if ctx.gpu else f"{DEFAULT_GPU_GB:g} GB (assumed: no --gpu given)"
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.WARNING,
            message=f"Full-vocabulary KD keeps {gib(full):.2f} GiB of logits per micro-batch "
            f"({share:.1%} of a {gpu_gb:g} GB GPU); kd_top_k={SUGGESTED_TOP_K} saves "
            f"{gib(saved):.2f} GiB; a chunked KD loss keeps {gib(chunked):.2f} GiB.",
            evidence={
                "batch_size": cfg.batch_size,
                "max_length": cfg.max_length,
                "vocab_size": vocab,
                "vocab_source": _vocab_source(ctx),
                "logits_copies": ", ".join(logits_copies(cfg, chunked=False)),
                "bytes_per_token_and_class": sum(logits_copies(cfg, chunked=False).values()),
                "logits_gib": gib(full),
                "gpu": gpu_name,
                "share_of_gpu": round(share, 4),
                "suggested_kd_top_k": SUGGESTED_TOP_K,
                "logits_gib_with_top_k": gib(full - saved),
                "saved_gib": gib(saved),
                "logits_gib_chunked": gib(chunked),
            },
            fix=f"Set kd_top_k to {SUGGESTED_TOP_K}: saves {gib(saved):.2f} GiB per micro-batch.",
            patch={"kd_top_k": SUGGESTED_TOP_K},
        )
    ]
