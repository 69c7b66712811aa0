"""`doctor check`'s peak-memory estimate against the measured peak of one real training step.

For two GPT-2-shaped teacher/student pairs (random weights, built from configs: no hub), one
step as the trainer runs it on CPU in fp32: the teacher's forward under no_grad, the
student's forward, `DistillationLoss` (CE + full-vocabulary KD, the chunked loss), backward,
AdamW. Measured = the bytes held before the step (both models' weights and AdamW's state,
from a first step) + the peak the step allocates (torch's profiler, every CPU allocation
and free; see benchmarks/kd_loss.py). Estimated = `memory_estimate.peak_training_memory`.
The goal: within +-20%. `--fused`: the same with `kd_fused_lm_head` (both models run without
their lm_head; the fused loss computes the logits a block at a time).

    python benchmarks/step_memory.py [--fused] [--json]
"""

from __future__ import annotations

import argparse
import json

import torch
from kd_loss import cpu_peak_bytes  # the same allocator accounting as the loss benchmark
from transformers import GPT2Config, GPT2LMHeadModel

from distill_doctor.config.schema import TrainConfig
from distill_doctor.rules.base import ModelFacts
from distill_doctor.rules.memory_estimate import peak_training_memory
from distill_doctor.trainer.kd_fused import forward_without_lm_head
from distill_doctor.trainer.losses import DistillationLoss, count_valid_tokens

PAIRS = {
    # name: (teacher layers, hidden, heads), (student ...), vocab, batch, length
    "gpt2-4x256->2x128, V=50257": ((4, 256, 4), (2, 128, 2), 50257, 4, 128),
    "gpt2-6x384->3x192, V=32000": ((6, 384, 6), (3, 192, 3), 32000, 2, 256),
}


def build(shape, vocab: int, length: int) -> GPT2LMHeadModel:
    layers, hidden, heads = shape
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=length,
        n_embd=hidden,
        n_layer=layers,
        n_head=heads,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def facts(name: str, model: GPT2LMHeadModel) -> ModelFacts:
    c = model.config
    return ModelFacts(
        name=name,
        vocab_size=c.vocab_size,
        max_positions=c.n_positions,
        num_layers=c.n_layer,
        hidden_size=c.n_embd,
        num_heads=c.n_head,
        num_params=sum(p.numel() for p in model.parameters()),
    )


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_pair(teacher_shape, student_shape, vocab, batch, length, fused: bool) -> dict:
    torch.manual_seed(0)
    teacher = build(teacher_shape, vocab, length).requires_grad_(False)
    student = build(student_shape, vocab, length).train()
    cfg = TrainConfig(
        batch_size=batch, max_length=length, ce_weight=0.5, kd_weight=0.5, kd_fused_lm_head=fused
    )
    forward = forward_without_lm_head if fused else (lambda model, **inputs: model(**inputs))
    loss_fn = DistillationLoss(cfg, student.config, teacher.config, vocab)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    input_ids = torch.randint(0, vocab, (batch, length))

    def step() -> None:
        with torch.no_grad():
            teacher_out = forward(teacher, input_ids=input_ids)
        student_out = forward(student, input_ids=input_ids)
        parts = loss_fn(student_out, teacher_out, input_ids, count_valid_tokens(input_ids))
        parts["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # AdamW allocates its state on the first step
    state = [t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)]
    held = tensor_bytes([*teacher.parameters(), *student.parameters(), *state])
    measured = held + cpu_peak_bytes(step)
    estimate = peak_training_memory(
        cfg, facts("student", student), facts("teacher", teacher), vocab
    )
    return {
        "measured_mb": round(measured / 2**20, 1),
        "estimated_mb": round(estimate["total"] / 2**20, 1),
        "ratio": round(estimate["total"] / measured, 3),
        "estimate_mb": {k: round(v / 2**20, 1) for k, v in estimate.items() if k != "total"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fused", action="store_true", help="kd_fused_lm_head: true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = {name: measure_pair(*spec, args.fused) for name, spec in PAIRS.items()}
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    for name, r in rows.items():
        print(
            f"{name}: measured {r['measured_mb']:.1f} MiB, estimated {r['estimated_mb']:.1f} "
            f"MiB ({r['ratio']:.2f}x) - {r['estimate_mb']}"
        )


if __name__ == "__main__":
    main()
