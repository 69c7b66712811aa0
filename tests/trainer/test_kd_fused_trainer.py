"""`kd_fused_lm_head: true` in the trainer: the same losses and the same gradients as the
chunked loss on materialised logits, on the shipped demo pair (Llama, tied embeddings) and on
the tiny GPT-2 pair."""

from __future__ import annotations

import pytest
import torch
from train_helpers import tiny_config, write_corpus

from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer import loop
from distill_doctor.trainer.kd_fused import forward_without_lm_head

CPU = torch.device("cpu")


def first_step(cfg):
    """The first optimizer step's metrics and the student's gradients just before it."""
    run = loop.setup(cfg, CPU)
    run.student.eval()  # no dropout: both runs must see the same function
    grads = {}

    def capture(optimizer, args, kwargs):
        grads.update({n: p.grad.clone() for n, p in run.student.named_parameters()})

    run.optimizer.register_step_pre_hook(capture)
    group = loop.epoch_groups(run, 0, 0)[0]
    metrics = loop.accumulated_step(run, group, loop.ckpt.TrainState())
    assert isinstance(run.student.get_output_embeddings(), torch.nn.Linear)  # put back
    return metrics, grads


def assert_same_step(cfg, monkeypatch):
    plain, plain_grads = first_step(cfg)
    headless = []

    def spy(model, **inputs):
        headless.append(model)
        return forward_without_lm_head(model, **inputs)

    monkeypatch.setattr(loop, "forward_without_lm_head", spy)
    fused, fused_grads = first_step(cfg.model_copy(update={"kd_fused_lm_head": True}))
    assert len(headless) == 2 * cfg.gradient_accumulation_steps  # teacher and student
    for key in ("loss", "ce", "kd", "grad_norm"):
        assert fused[key] == pytest.approx(plain[key], rel=1e-5)
    assert fused_grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "options",
    [
        dict(kd_loss="forward_kl"),
        dict(kd_loss="jsd", kd_jsd_beta=0.3, kd_top_k=8),
    ],
)
def test_demo_pair_fused_step_equals_the_chunked_step(tmp_path, options, monkeypatch):
    cfg = TrainConfig(
        teacher_model="demo:teacher", student_model="demo:student",
        data=str(write_corpus(tmp_path / "d.txt", documents=16)), max_length=16, batch_size=4,
        gradient_accumulation_steps=2, seed=0, **options,
    )  # fmt: skip
    assert_same_step(cfg, monkeypatch)


def test_tiny_gpt2_pair_fused_step_equals_the_chunked_step(tiny_pair, tmp_path, monkeypatch):
    data = write_corpus(tmp_path / "d.txt", documents=16)
    assert_same_step(
        tiny_config(tiny_pair, data, kd_loss="reverse_kl", kd_chunk_size=3), monkeypatch
    )


def test_a_model_that_transforms_its_logits_is_refused(tiny_pair):
    from distill_doctor.trainer.models import load_model

    model = load_model(str(tiny_pair.student))
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(InputError, match="kd_fused_lm_head: false"):
        forward_without_lm_head(model, input_ids=torch.tensor([[3, 4, 5]]))
    assert isinstance(model.get_output_embeddings(), torch.nn.Linear)
