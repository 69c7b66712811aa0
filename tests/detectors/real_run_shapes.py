"""Streams shaped like real runs people pasted into public issues and notes (issue 8): the
values follow the pasted logs (loss level, grad norm, LR schedule, logging interval), so the
detectors are tested on the shapes that fooled them, without copying the logs themselves.

Sources (shapes, not files):
- every grad_norm `inf`, loss ~2.44 for 130 log lines (a Llama-3.2-1B LoRA run in
  text-generation-webui, `Step: N {'loss': ..., 'grad_norm': inf, ...}`), found in the
  repository eminaydinalp/LLM_Degerlendirme (notes on a failed fine-tune);
- one `'grad_norm': inf` among finite norms with a finite loss 0.09 (an HF Trainer stdout in a
  public repository's notes): an fp16 step the GradScaler skipped;
- an overfitting run: eval loss best a third of the way in, then +80% while the train loss
  falls toward 0 (the 59-finding run of issue 8); its per-step grad norms fall by 100x.
"""

from __future__ import annotations

import math
import random

INF = math.inf


def lora_grad_inf_every_step(lines: int = 130) -> list[dict]:
    rng = random.Random(1)
    records = []
    for i in range(lines):
        step = 3 + 4 * i
        warm = min(1.0, step / 99)
        lr = 2e-4 * warm if step <= 99 else 2e-4 * math.cos((step - 99) / 900 * math.pi / 2)
        loss = 2.44 + rng.uniform(-0.07, 0.1)
        records.append(
            {"step": step, "loss": round(loss, 4), "grad_norm": INF, "lr": lr, "epoch": step / 228}
        )
    return records


def hf_fp16_one_skipped_step(lines: int = 200, skipped: tuple[int, ...] = (120,)) -> list[dict]:
    rng = random.Random(2)
    records = []
    for i in range(lines):
        step = 10 * (i + 1)
        grad = INF if i in skipped else 0.1 + 0.4 * rng.random()
        loss = 0.09 + 0.02 * rng.random()
        records.append({"step": step, "loss": loss, "grad_norm": grad, "lr": 3e-5})
    return records


def overfitting_run(steps: int = 3000, seed: int = 0) -> list[dict]:
    """Per-step train records (loss -> 1e-4, grad norm -> 0.02 with heavy-tailed noise) and an
    eval every 100 steps: best at step 1000, then a slow climb to +80%."""
    rng = random.Random(seed)
    records = []
    for step in range(1, steps + 1):
        t = step / steps
        loss = max(1e-4, 2.0 * math.exp(-9 * t)) * math.exp(rng.gauss(0, 0.5))
        grad = (2.0 * math.exp(-4.6 * t) + 0.005) * math.exp(rng.gauss(0, 0.8))
        records.append({"step": step, "loss": loss, "grad_norm": grad, "lr": 5e-5 * (1 - t)})
        if step % 100 == 0:
            best_t = 1 / 3
            if t <= best_t:
                eval_loss = 0.8 + 1.2 * (1 - t / best_t) ** 2
            else:
                eval_loss = 0.8 * (1 + 0.8 * (t - best_t) / (1 - best_t))
            records.append({"step": step, "eval_loss": eval_loss * (1 + rng.gauss(0, 0.01))})
    return records
