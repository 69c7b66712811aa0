"""Synthetic metric streams: a healthy KD-like run with knobs to inject each fault.

Healthy: total loss = CE + KD, each decaying like 1/(1 + 20 t) with multiplicative noise; LR with
linear warmup then linear decay to 0 at the last step; grad norms decaying with log-normal
noise; a parameter checksum that moves every step; evals every `eval_every` steps; memory
near 70%; steady throughput. A fault starts at the step given in `faults`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from distill_doctor.detectors.episodes import latest_per_episode

VOCAB = 32000  # ln(32000) = 10.37: the CE of a uniform guess
MEM_TOTAL = 16e9
SEED_NAN_WARNING = "[Warning] lm_loss produced non-finite value (nan); clamping to zero."

FAULTS = frozenset(
    {
        "lr_zero",
        "nan_loss",
        "nan_warning",
        "clamped_nan",
        "frozen_params",
        "eval_frozen",
        "loss_flat",
        "loss_spike",
        "loss_divergence",
        "grad_explosion",
        "grad_vanishing",
        "ce_above_chance",
        "ppl_from_total",
        "memory_pressure",
        "throughput_drop",
    }
)


@dataclass
class StreamSpec:
    steps: int = 1000
    seed: int = 0
    log_every: int = 1
    eval_every: int = 100
    peak_lr: float = 5e-5
    noise: float = 0.03  # relative noise of the per-step losses
    faults: dict[str, int] = field(default_factory=dict)  # fault name -> first bad step
    drop: frozenset[str] = frozenset()  # record keys never logged
    with_facts_records: bool = True  # first record carries planned_steps and vocab_size

    def __post_init__(self) -> None:
        unknown = set(self.faults) - FAULTS
        assert not unknown, f"unknown faults {unknown}"


def _decay(start: float, floor: float, t: float) -> float:
    """Fast early drop, slow tail: the shape of real LM training curves."""
    return floor + (start - floor) / (1.0 + 20.0 * t)


def _lr(spec: StreamSpec, step: int) -> float:
    warmup = max(1, spec.steps // 20)
    if step < warmup:
        return spec.peak_lr * step / warmup
    return spec.peak_lr * max(0.0, (spec.steps - step) / (spec.steps - warmup))


class _Run:
    """The healthy dynamics plus fault state, one step at a time."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.checksum = 1234.5
        self.frozen_eval: dict[str, float] | None = None

    def active(self, fault: str, step: int) -> bool:
        start = self.spec.faults.get(fault)
        return start is not None and step >= start

    def at(self, fault: str, step: int) -> bool:
        return self.spec.faults.get(fault) == step

    def noisy(self, value: float) -> float:
        return value * (1.0 + self.rng.gauss(0.0, self.spec.noise))

    def losses(self, step: int) -> tuple[float, float]:
        """Smooth (CE, KD) at this step, before noise."""
        t = step / self.spec.steps
        if self.active("loss_flat", step):
            t = self.spec.faults["loss_flat"] / self.spec.steps
        ce, kd = _decay(10.0, 1.5, t), _decay(8.0, 0.3, t)
        if self.active("ce_above_chance", step):
            ce *= 2.0
        if self.active("loss_divergence", step):
            start = self.spec.faults["loss_divergence"]
            grow = 1.0 + 6.0 * (step - start) / max(1, self.spec.steps - start)
            start_ce, start_kd = self.losses(start - 1)
            ce, kd = start_ce * grow, start_kd * grow
        return ce, kd

    def train_record(self, step: int) -> dict:
        ce, kd = (self.noisy(v) for v in self.losses(step))
        if self.at("loss_spike", step):
            ce, kd = ce * 3.0, kd * 3.0
        lr = 0.0 if self.active("lr_zero", step) else _lr(self.spec, step)
        grad = 5.0 * math.exp(-2.0 * step / self.spec.steps) + 1.0
        grad *= math.exp(self.rng.gauss(0.0, 0.2))
        if self.at("grad_explosion", step):
            grad *= 100.0
        if self.active("grad_vanishing", step):
            grad = 0.0
        if not self.active("frozen_params", step):
            self.checksum += self.rng.gauss(0.0, 1.0) * 0.01 + lr * 100
        mem = 0.97 if self.active("memory_pressure", step) else 0.70 + self.rng.gauss(0, 0.01)
        speed = 2.0 * (0.3 if self.active("throughput_drop", step) else 1.0)
        speed *= 1.0 + self.rng.gauss(0.0, 0.05)
        record = {
            "step": step,
            "epoch": step / self.spec.steps,
            "lr": lr,
            "loss": ce + kd,
            "loss_ce": ce,
            "loss_kd": kd,
            "grad_norm": grad,
            "checksum": self.checksum,
            "ppl": math.exp(ce),
            "mem_used_bytes": mem * MEM_TOTAL,
            "mem_total_bytes": MEM_TOTAL,
            "steps_per_s": speed,
            "tokens_per_s": speed * 8192,
        }
        self.inject_nan(step, record)
        if self.active("ppl_from_total", step):
            record["ppl"] = math.exp(record["loss"])
        return record

    def inject_nan(self, step: int, record: dict) -> None:
        if self.at("nan_loss", step):
            record["loss_kd"] = record["loss"] = float("nan")
        if self.at("clamped_nan", step):
            record["loss"], record["grad_norm"] = 0.0, float("nan")
        if self.at("nan_warning", step):
            record["warning"] = SEED_NAN_WARNING

    def eval_record(self, step: int) -> dict:
        ce, kd = self.losses(step)
        values = {"eval_loss": (ce + kd) * 1.05, "eval_ce": ce * 1.05, "eval_kd": kd * 1.05}
        values = {k: v * (1.0 + self.rng.gauss(0.0, 0.005)) for k, v in values.items()}
        if self.active("eval_frozen", step):
            self.frozen_eval = self.frozen_eval or {k: round(v, 2) for k, v in values.items()}
            values = dict(self.frozen_eval)
        values["eval_ppl"] = math.exp(values["eval_ce"])
        return {"step": step, **values}


def healthy_stream(spec: StreamSpec) -> Iterator[dict]:
    """Records in step order: a train record every `log_every` steps, evals in between."""
    run = _Run(spec)
    if spec.with_facts_records:
        yield {"step": 0, "planned_steps": spec.steps, "vocab_size": VOCAB}
    for step in range(1, spec.steps + 1):
        record = run.train_record(step)  # every step, so noise does not depend on log_every
        if step % spec.log_every == 0 or any(run.at(f, step) for f in spec.faults):
            yield _without(record, spec.drop)
        if step % spec.eval_every == 0:
            yield _without(run.eval_record(step), spec.drop)


def _without(record: dict, drop: frozenset[str]) -> dict:
    return {k: v for k, v in record.items() if k not in drop}


OPTIONAL_KEYS = (
    "lr",
    "loss_ce",
    "loss_kd",
    "grad_norm",
    "checksum",
    "ppl",
    "mem_used_bytes",
    "mem_total_bytes",
    "steps_per_s",
    "tokens_per_s",
    "epoch",
    "eval_ce",
    "eval_kd",
    "eval_ppl",
)


def run_one(detector_cls: type, records, facts=None) -> list:
    """All findings of one detector over a stream, `finish()` included, each episode once in
    its latest statement (as `run_detectors` and the postmortem keep them)."""
    detector = detector_cls(facts)
    findings = [f for record in records for f in detector.update(record)]
    return latest_per_episode(findings + detector.finish())


def stream(steps: int = 1000, **kwargs) -> list[dict]:
    return list(healthy_stream(StreamSpec(steps=steps, **kwargs)))
