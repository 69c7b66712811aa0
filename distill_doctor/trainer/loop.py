"""The distillation training loop, top to bottom: setup, data, optimizer and schedule, the
accumulated optimizer step, eval, checkpoints, end.

Gradient accumulation, the seed's undoing, done the one right way:
  * an optimizer step takes `gradient_accumulation_steps` micro-batches (fewer for an epoch's
    leftover), and the plan counts steps exactly so (`config.steps.optimizer_steps`);
  * every loss is divided by the valid tokens of the WHOLE accumulated batch (counted first,
    clamped to >= 1; an all-masked batch is counted, not divided by 0), so the summed
    micro-batch gradients are the gradient of the accumulated batch's per-token mean;
  * clip, `optimizer.step()`, `scheduler.step()`, zero_grad: once per optimizer step, never per
    micro-batch; the scheduler is told the planned steps (or the config's `num_training_steps`,
    when it insists: that is how the seed's 16x bug is reproduced on purpose).
The teacher is frozen (`eval()`, no gradients), runs under `torch.no_grad()` and is never in
the optimizer. Observers (see `hooks`) receive every number; this module prints nothing.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill_doctor.config.schema import TrainConfig
from distill_doctor.config.steps import optimizer_steps
from distill_doctor.errors import InputError
from distill_doctor.findings import Finding
from distill_doctor.records import MICRO_STEP
from distill_doctor.trainer import checkpoint as ckpt
from distill_doctor.trainer import distributed
from distill_doctor.trainer.data import Blocks, epoch_batches, eval_batches, load_splits
from distill_doctor.trainer.demo import data_path
from distill_doctor.trainer.evaluate import evaluate
from distill_doctor.trainer.faults import Faults
from distill_doctor.trainer.hooks import Observers, TrainControl, TrainObserver, stop_on_signals
from distill_doctor.trainer.kd_fused import forward_without_lm_head
from distill_doctor.trainer.losses import DistillationLoss, count_valid_tokens
from distill_doctor.trainer.models import (
    check_vocab_compatible,
    freeze_teacher,
    load_model,
    load_tokenizer,
)
from distill_doctor.trainer.preflight import preflight_findings
from distill_doctor.trainer.schedule import build_scheduler, warmup_summary
from distill_doctor.trainer.step_metrics import eval_record, step_record, versions
from distill_doctor.watchdog.memory import MemoryProbe


@dataclass
class RunResult:
    status: str  # completed | interrupted | stopped
    stop_reason: str | None
    state: ckpt.TrainState
    run_dir: Path
    evals: dict[str, dict[str, float]] = field(default_factory=dict)  # before / after
    last_eval_step: int = 0
    preflight: list[Finding] = field(default_factory=list)  # the config rules' findings


@dataclass
class Run:
    """What `setup` builds once and every step uses."""

    cfg: TrainConfig
    device: torch.device
    teacher: Any  # transformers PreTrainedModel, frozen
    student: Any  # transformers PreTrainedModel, trained
    tokenizer: Any
    loss: DistillationLoss  # also holds the learned feature projections
    train: Blocks
    held_out: Blocks
    n_batches: int  # micro-batches per epoch
    planned: int  # optimizer steps this run takes
    scheduler_steps: int  # steps the scheduler is told (planned, unless the config insists)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: Any  # torch.amp.GradScaler with fp16 on CUDA, else None
    autocast: Callable[[], contextlib.AbstractContextManager]
    params: list[torch.nn.Parameter]  # everything the optimizer updates (clipped together)
    memory: MemoryProbe  # the memory numbers of every Record (GPU: NVML/torch; CPU: RSS)
    dist: distributed.Distributed  # this process's rank and world (a single process: 0 of 1)
    trained: Any  # the student as the steps run it: DDP under torchrun, else the student
    faults: Faults = field(default_factory=Faults)  # `--inject`: none unless asked
    extra_state: dict[str, Any] = field(default_factory=dict)  # saved beside (the watchdog)


def checkpoint_modules(run: Run) -> dict[str, Any]:
    """What a checkpoint holds, read at each save: a repair may have swapped the scheduler."""
    modules = {k: getattr(run, k) for k in ("student", "loss", "optimizer", "scheduler", "scaler")}
    return {**modules, "extra": run.extra_state}


# --- setup --------------------------------------------------------------------------------


def pick_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"device is 'cuda' but this torch {torch.__version__} sees no CUDA device; set "
            "device to 'auto' (CUDA when there is one) or 'cpu'."
        )
    return torch.device(cfg.device)


def precision(cfg: TrainConfig, device: torch.device) -> tuple[Any, Any]:
    """(autocast factory, GradScaler or None): bf16/fp16 autocast on CUDA, fp32 on CPU."""
    if device.type != "cuda" or not (cfg.bf16 or cfg.fp16):
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if cfg.bf16 else torch.float16
    scaler = torch.amp.GradScaler("cuda") if cfg.fp16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


def decay_groups(modules: list[torch.nn.Module], weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices only, never on biases and norm scales (1-D)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


# --- one optimizer step -------------------------------------------------------------------


def model_forward(
    model: torch.nn.Module, batch: dict, loss_fn: DistillationLoss, headless: bool = False
) -> Any:
    """The model's output; `headless`: its last hidden state and lm_head instead of logits,
    for the fused loss (`kd_fused_lm_head`: the `[B, L, V]` logits are never built)."""
    inputs = dict(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        output_hidden_states=loss_fn.needs_hidden_states,
        output_attentions=loss_fn.needs_attentions,
    )
    return forward_without_lm_head(model, **inputs) if headless else model(**inputs)


def accumulated_step(
    run: Run,
    group: list[dict],
    state: ckpt.TrainState,
    allow_update: Callable[[dict], bool] = lambda _: True,
) -> dict[str, float]:
    """Forward/backward every micro-batch of `group`, then one clipped optimizer step (unless
    `allow_update` vetoes it: the watchdog keeps a non-finite gradient off the weights).
    Under torchrun `valid` counts every rank's tokens (see `distributed`)."""
    valid = run.dist.sum_int(sum(count_valid_tokens(batch["labels"]) for batch in group))
    if valid == 0:
        state.all_masked_batches += 1
    denominator = max(valid, 1)
    totals: dict[str, float] = {}
    run.dist.start_compute()
    run.faults.before_step(run.student, state.step)
    for i, batch in enumerate(group):
        batch = {k: v.to(run.device) for k, v in batch.items()}
        steps = i == len(group) - 1
        with run.dist.micro_batch(run.trained, steps):
            with run.autocast():
                headless = run.cfg.kd_fused_lm_head
                with torch.no_grad():
                    teacher_out = model_forward(run.teacher, batch, run.loss, headless)
                student_out = model_forward(run.trained, batch, run.loss, headless)
                parts = run.loss(student_out, teacher_out, batch["labels"], denominator)
            if steps:
                run.dist.end_compute()
            # DDP averages gradients over ranks; x world_size makes it the sum of the shares
            loss = parts["loss"] * run.dist.world_size
            (run.scaler.scale(loss) if run.scaler else loss).backward()
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + value.item()
        if MICRO_STEP not in totals and not math.isfinite(totals["loss"]):
            totals[MICRO_STEP] = i  # where the first non-finite loss appeared
        del teacher_out, student_out, parts, loss  # free the logits before the next micro-batch
    run.dist.average_gradients(run.loss)
    return {**totals, **optimizer_update(run, totals, valid, allow_update), "valid_tokens": valid}


def optimizer_update(
    run: Run, totals: dict[str, float], valid: int, allow_update: Callable[[dict], bool]
) -> dict[str, float]:
    optimizer, scaler = run.optimizer, run.scaler
    if scaler:
        scaler.unscale_(optimizer)
    max_norm = run.cfg.max_grad_norm or math.inf  # inf: measure the norm, clip nothing
    grad_norm = torch.nn.utils.clip_grad_norm_(run.params, max_norm).item()
    lr = optimizer.param_groups[0]["lr"]  # the LR this step uses, before the scheduler moves
    out = {"grad_norm": grad_norm, "lr": lr}
    # A veto on any rank is a veto on all: the ranks' weights must stay the same.
    if run.dist.any_rank(not allow_update({**totals, **out, "valid_tokens": valid})):
        if scaler:
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return {**out, "update_skipped": 1}
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    run.scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    if scaler:
        out["loss_scale"] = scaler.get_scale()
    return out


# --- the run ------------------------------------------------------------------------------


def setup(cfg: TrainConfig, device: torch.device) -> Run:
    """Models, data, loss, optimizer, schedule: everything a step needs. Under torchrun
    (`distributed`) each rank builds its own, and a micro-batch is `batch_size` per rank."""
    here = distributed.current()
    global_batch = cfg.batch_size * here.world_size
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    attn = "eager" if cfg.attention_weight > 0 else None  # fused kernels return no maps
    teacher = load_model(cfg.teacher_model, attn_implementation=attn, dtype=torch.float32)
    student = load_model(cfg.student_model, attn_implementation=attn, dtype=torch.float32)
    tokenizer = load_tokenizer(cfg.tokenizer or cfg.student_model)
    freeze_teacher(teacher)
    kd_vocab = check_vocab_compatible(teacher, student, tokenizer)  # before any training
    loss_fn = DistillationLoss(cfg, student.config, teacher.config, kd_vocab)
    train, held_out = load_splits(cfg, tokenizer, data_path(cfg))
    teacher.to(device)
    student.to(device).train()
    loss_fn.to(device)
    n_batches = math.ceil(len(train) / global_batch)
    planned = optimizer_steps(
        len(train), global_batch, cfg.gradient_accumulation_steps, cfg.epochs, cfg.max_steps
    )
    optimizer = torch.optim.AdamW(
        decay_groups([student, loss_fn], cfg.weight_decay),
        lr=cfg.learning_rate,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_epsilon,
    )
    scheduler_steps = cfg.num_training_steps or planned
    autocast, scaler = precision(cfg, device)
    return Run(
        cfg=cfg,
        device=device,
        teacher=teacher,
        student=student,
        tokenizer=tokenizer,
        loss=loss_fn,
        train=train,
        held_out=held_out,
        n_batches=n_batches,
        planned=planned,
        scheduler_steps=scheduler_steps,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, cfg, scheduler_steps),
        scaler=scaler,
        autocast=autocast,
        params=[p for g in optimizer.param_groups for p in g["params"]],
        memory=MemoryProbe(device),
        dist=here,
        trained=here.wrap(student),
    )


def run_eval(run: Run) -> dict[str, float]:
    """Under torchrun each rank evaluates its share of every (global) eval batch, and the
    ranks' per-token means are combined: the numbers of one process with the global batch."""
    cfg, device, here = run.cfg, run.device, run.dist
    global_batch = cfg.batch_size * here.world_size
    take = functools.partial(here.local_batch, run.held_out)
    batches = [
        {k: v.to(device) for k, v in b.items()}
        for b in eval_batches(run.held_out, global_batch, cfg.eval_max_batches, take)
    ]
    results = evaluate(
        run.student,
        run.teacher,
        run.loss,
        batches,
        lambda model, batch: model_forward(model, batch, run.loss),
        run.autocast,
    )
    return here.combine_eval(results, sum(count_valid_tokens(b["labels"]) for b in batches))


def epoch_groups(run: Run, epoch: int, start: int) -> list[list[dict]]:
    """The accumulated batches of an epoch from micro-batch `start` on (a resume skips the
    consumed ones); the last partial epoch of a fractional `epochs` is cut like the plan."""
    cfg = run.cfg
    batches = epoch_batches(len(run.train), cfg.batch_size * run.dist.world_size, cfg.seed, epoch)
    if epoch == int(cfg.epochs):
        batches = batches[: math.ceil(len(batches) * (cfg.epochs - int(cfg.epochs)))]
    accum = cfg.gradient_accumulation_steps
    return [
        [run.dist.local_batch(run.train, ix) for ix in batches[i : i + accum]]
        for i in range(start, len(batches), accum)
    ]


def train(
    cfg: TrainConfig,
    run_dir: Path,
    observers: list[TrainObserver],
    *,
    resume: bool = False,
    checkpoint: Path | None = None,
    control: TrainControl | None = None,
    inject: tuple[str, ...] = (),
    extra_state: dict[str, Any] | None = None,
) -> RunResult:
    """Run (or resume) a distillation run into `run_dir`; returns how it ended. `resume`: from
    the newest good checkpoint, or from `checkpoint` when given (already chosen). Under
    torchrun every rank calls this; only rank 0 should be given observers (they print and
    write)."""
    if resume and checkpoint is None:
        checkpoint = ckpt.latest_checkpoint(run_dir)  # fail before loading
    resume = checkpoint is not None
    if checkpoint:
        distributed.check_resume(checkpoint, distributed.current())
    device = pick_device(cfg)
    faults = Faults.parse(list(inject), distributed.current())
    run = setup(faults.config(cfg), device)
    faults.apply(run)
    run.extra_state = extra_state or {}
    state = ckpt.TrainState()
    if checkpoint:
        state = ckpt.load_checkpoint(checkpoint, checkpoint_modules(run), run.dist.rank)
    if checkpoint is not None and state.step >= run.planned:
        raise InputError(
            f"{run_dir} is already at step {state.step} ({checkpoint.name}) and this config "
            f"plans {run.planned} optimizer steps: nothing left to train. To train further, "
            f"give --max-steps above {state.step}."
        )
    control = control or TrainControl()
    hooks = Observers(observers)
    hooks.on_setup(run)
    result = RunResult("completed", None, state, run_dir)
    result.preflight = [] if resume else preflight_findings(cfg, len(run.train))
    hooks.on_run_start(
        {
            "config": cfg.model_dump(mode="json"),
            "planned_steps": run.planned,
            "scheduler_steps": run.scheduler_steps,
            "warmup_steps": cfg.warmup_steps,
            "scheduler_line": warmup_summary(run.planned, cfg.warmup_steps),
            "device": str(device),
            "world_size": run.dist.world_size,
            "versions": versions(),
            "run_dir": str(run_dir),
            "resumed_from_step": state.step if resume else None,
            "train_blocks": len(run.train),
            "train_samples_in_config": cfg.train_samples,
            "eval_blocks": len(run.held_out),
            "preflight": result.preflight,
        },
        control,
    )
    if not resume and not control.should_stop:  # a pre-flight abort spends nothing more
        result.evals["before"] = run_eval(run)
        hooks.on_eval(eval_record(0, result.evals["before"]))
    with stop_on_signals(control):  # still on while the last save runs: a 2nd Ctrl-C waits
        train_epochs(run, state, hooks, control, result)
        distributed.save_checkpoint(
            run.dist, run_dir / "checkpoints", state, checkpoint_modules(run), cfg.keep_last
        )
    if control.should_stop:
        result.stop_reason = control.stop_reason
        result.status = "interrupted" if control.stop_reason in ("SIGINT", "SIGTERM") else "stopped"
    if result.status == "completed" and run.dist.is_main:
        run.student.save_pretrained(run_dir / "student")
        run.tokenizer.save_pretrained(run_dir / "student")
    hooks.on_run_end(result.status)
    return result


def train_epochs(
    run: Run,
    state: ckpt.TrainState,
    hooks: Observers,
    control: TrainControl,
    result: RunResult,
) -> None:
    """Optimizer steps until the plan is done or a stop is requested; eval and checkpoint on
    their cadence. Updates `state` and `result` in place."""
    cfg = run.cfg
    stop = run.dist.agree_stop(control)  # every rank decides on the same, agreed flag
    while state.step < run.planned and not stop:
        for group in epoch_groups(run, state.epoch, state.batch_in_epoch):
            started = time.perf_counter()
            group = run.faults.batch(state.step + 1, group)
            metrics = accumulated_step(run, group, state, lambda m: hooks.allow_update(m, control))
            state.step += 1
            state.batch_in_epoch += len(group)
            tokens = sum(int(b["attention_mask"].sum()) for b in group)
            record = step_record(run, metrics, state, time.perf_counter() - started, tokens)
            hooks.on_record(run.dist.combine(record))
            done = state.step >= run.planned
            if state.step % cfg.eval_steps == 0 or done:
                result.evals["after"], result.last_eval_step = run_eval(run), state.step
                hooks.on_eval(eval_record(state.step, result.evals["after"]))
            stop = run.dist.agree_stop(control)
            save_every = cfg.save_steps or cfg.eval_steps
            if state.step % save_every == 0 and not done and not stop:
                root = result.run_dir / "checkpoints"
                modules = checkpoint_modules(run)
                distributed.save_checkpoint(run.dist, root, state, modules, cfg.keep_last)
            if done or stop:
                return
        state.epoch += 1
        state.batch_in_epoch = 0
