"""precision-unsupported: a 16-bit mode the hardware cannot run natively, or where it buys
nothing."""

from __future__ import annotations

from distill_doctor.findings import Finding, Severity
from distill_doctor.registry import RuleDoc
from distill_doctor.rules.base import CheckContext

DOC = RuleDoc(
    id="precision-unsupported",
    code="DD110",
    kind="config",
    keys=("bf16", "fp16", "device"),
    severity=Severity.ERROR,
    summary="bf16 on a GPU without native bf16 (P100, V100, T4), fp16 and bf16 both on, or "
    "fp16 where it buys nothing (no tensor cores, CPU).",
    why="bf16 needs Ampere (sm80) or newer: on a P100, V100 or T4 it is emulated (many times "
    "slower) or refused by autocast (error). fp16 and bf16 together leave the precision to "
    "chance (error). On a P100 (no tensor cores) or the CPU, fp16 saves memory but little or no "
    "time, and adds overflow risk, the seed run's NaN losses (warning).",
    fix="On P100 use fp32 (both off); on V100 and T4 use fp16 (with loss scaling); on "
    "Ampere and newer prefer bf16; on the CPU use fp32.",
    fix_available="always",
    example='{"bf16": true} with --gpu p100',
)


def _problem(ctx: CheckContext) -> tuple[Severity, str, dict] | None:
    """The worst precision problem of the config on its hardware, with its patch."""
    cfg, gpu = ctx.config, ctx.gpu
    if cfg.fp16 and cfg.bf16:
        keep_bf16 = gpu is None or gpu.bf16_native
        patch = {"fp16": False} if keep_bf16 else {"bf16": False}
        return Severity.ERROR, "fp16 and bf16 are both on", patch
    if gpu is not None and cfg.bf16 and not gpu.bf16_native:
        patch = {"bf16": False, "fp16": gpu.fp16_tensor_cores}
        return Severity.ERROR, f"bf16 is not native on the {gpu.name}", patch
    if gpu is not None and cfg.fp16 and not gpu.fp16_tensor_cores:
        reason = f"fp16 buys little on the {gpu.name}: no tensor cores"
        return Severity.WARNING, reason, {"fp16": False}
    if cfg.device == "cpu" and cfg.fp16:
        return Severity.WARNING, "fp16 on the CPU is slower than fp32", {"fp16": False}
    return None


def _recommended(patched_fp16: bool, patched_bf16: bool) -> str:
    return "bf16" if patched_bf16 else "fp16" if patched_fp16 else "fp32"


def check(ctx: CheckContext) -> list[Finding]:
    problem = _problem(ctx)
    if problem is None:
        return []
    severity, reason, patch = problem
    cfg = ctx.config
    use = _recommended(patch.get("fp16", cfg.fp16), patch.get("bf16", cfg.bf16))
    return [
        Finding(
            id=DOC.id,
            code=DOC.code,
            severity=severity,
            message=f"{reason}; use {use}.",
            evidence={
                "fp16": cfg.fp16,
                "bf16": cfg.bf16,
                "device": ctx.gpu.name if ctx.gpu else cfg.device,
                "bf16_native": ctx.gpu.bf16_native if ctx.gpu else None,
                "fp16_tensor_cores": ctx.gpu.fp16_tensor_cores if ctx.gpu else None,
                "recommended": use,
            },
            fix=f"Use {use} here. {DOC.fix}",
            patch=patch,
        )
    ]
