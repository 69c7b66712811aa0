"""memory-over-budget: the estimated peak training memory does not fit the GPU named with
--gpu."""

from __future__ import annotations

from distill_doctor.config.schema import TrainConfig
from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext
from distill_doctor.rules.kd_scope import kd_in_play
from distill_doctor.rules.memory_estimate import GIB, gib, peak_training_memory

# The estimate leaves out the CUDA context (~0.3-0.5 GiB) and the caching allocator's
# fragmentation; past 90% of the card a run is one long batch away from out-of-memory.
WARN_SHARE = 0.90

DOC = RuleDoc(
    id="memory-over-budget",
    code="DD105",
    kind="config",
    keys=("batch_size", "max_length", "student_model", "teacher_model"),
    severity=Severity.ERROR,
    summary="The estimated peak training memory exceeds the GPU given with --gpu (a warning "
    "past 90% of it).",
    why="Out-of-memory comes at the first long batch, after the model load and often after "
    "the first eval: minutes or hours of GPU time lost. The estimate adds the frozen teacher's "
    "weights, the student's weights, gradients and AdamW state (16 bytes per parameter), the "
    "logits copies of the KD loss and the student's activations (Korthikanti et al. 2022). "
    "With a LoRA/QLoRA adapter only the adapter has gradients and AdamW state, and 4-bit or "
    "8-bit base weights take half a byte or one byte per parameter.",
    fix="Halve batch_size and double gradient_accumulation_steps (same effective batch), "
    "shorten max_length, or use a larger GPU; with a straightforward (unchunked) KD loss, "
    "set kd_top_k (the chunked loss of `doctor train` gains no memory from it); with "
    "`doctor train`, kd_fused_lm_head: true keeps neither model's full logits.",
    fix_available="sometimes",
    example='{"batch_size": 32, "max_length": 1024, "teacher_model": "gpt2-xl"} with --gpu t4',
)


def _estimate(ctx: CheckContext, cfg: TrainConfig) -> dict[str, int]:
    """A native config runs on distill_doctor's trainer (chunked logits loss); a Hugging Face
    one on a script whose loss is, most likely, the straightforward one."""
    with_kd = kd_in_play(ctx)
    chunked = ctx.dialect == "native"
    return peak_training_memory(
        cfg, ctx.student, ctx.teacher, ctx.vocab_size, with_kd, ctx.run, chunked
    )


def _smaller_batch_patch(ctx: CheckContext, budget: float) -> dict[str, int] | None:
    """Halve the micro-batch (doubling accumulation) until the estimate fits under 90%."""
    cfg = ctx.config
    batch, accumulation = cfg.batch_size, cfg.gradient_accumulation_steps
    while batch > 1:
        batch, accumulation = batch // 2, accumulation * 2
        trial = cfg.model_copy(
            update={"batch_size": batch, "gradient_accumulation_steps": accumulation}
        )
        if _estimate(ctx, trial)["total"] <= WARN_SHARE * budget:
            return {"batch_size": batch, "gradient_accumulation_steps": accumulation}
    return None


def check(ctx: CheckContext) -> list[Finding]:
    if ctx.gpu is None or ctx.student is None or ctx.vocab_size is None:
        return []
    if kd_in_play(ctx) and ctx.teacher is None:
        return []  # without the teacher the estimate would be too low to judge
    budget = ctx.gpu.memory_gb * GIB
    breakdown = _estimate(ctx, ctx.config)
    share = breakdown["total"] / budget
    if share <= WARN_SHARE:
        return []
    over = share > 1.0
    patch = _smaller_batch_patch(ctx, budget)
    evidence = {f"{part}_gib": gib(value) for part, value in breakdown.items()}
    evidence |= {"gpu": ctx.gpu.name, "gpu_gib": ctx.gpu.memory_gb, "share_of_gpu": round(share, 3)}
    fix = DOC.fix
    if patch:
        fix = (
            f"Set batch_size {patch['batch_size']} and gradient_accumulation_steps "
            f"{patch['gradient_accumulation_steps']} (same effective batch); or shorten "
            "max_length, or use a larger GPU."
        )
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=Severity.ERROR if over else Severity.WARNING,
            message=f"Estimated peak memory {gib(breakdown['total']):.1f} GiB is {share:.0%} of "
            f"the {ctx.gpu.name}.",
            evidence=evidence,
            fix=fix,
            patch=patch,
        )
    ]
