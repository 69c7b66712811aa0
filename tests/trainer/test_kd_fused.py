"""The fused lm_head loss against the straightforward one on materialised logits (`losses`,
the oracle): the same loss and the same gradients for the hidden state, the lm_head's weight
and its bias, in every mode, with the teacher's logits given or computed from its head."""

from __future__ import annotations

import pytest
import torch

from distill_doctor.trainer.kd_chunked import KDOptions
from distill_doctor.trainer.kd_fused import TeacherHead, fused_logits_loss
from distill_doctor.trainer.losses import ce_sum, kd_sum, top_k_kd_sum

V, H, H_TEACHER, ROWS = 11, 5, 7, 9
# Rows 3-6 masked: with chunk_rows=2 and block_rows=4, whole blocks of masked rows are skipped.
MASK = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1, 1], dtype=torch.bool)
KINDS = [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5), ("jsd", 0.2)]
TOP_K = [(None, "tail"), (4, "tail"), (4, "renormalize")]


def randn(seed: int, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def oracle_kd(student, teacher, kd: KDOptions) -> torch.Tensor:
    options = dict(temperature=kd.temperature, kind=kd.kind, scale_t2=kd.scale_t2, beta=kd.beta)
    if kd.top_k is None:
        return kd_sum(student, teacher, **options)
    return top_k_kd_sum(student, teacher, k=kd.top_k, mode=kd.top_k_mode, **options)


def params(with_bias: bool):
    hidden = randn(1, ROWS, H, scale=1.5)
    weight = randn(2, V + 2, H)  # two padded vocabulary rows: CE sees them, KD does not
    bias = randn(3, V + 2) if with_bias else None
    return [t if t is None else t.requires_grad_(True) for t in (hidden, weight, bias)]


def grads_of(loss: torch.Tensor, tensors) -> list[torch.Tensor | None]:
    loss.backward()
    return [None if t is None else t.grad for t in tensors]


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    torch.testing.assert_close(actual.float(), expected.float(), rtol=rtol, atol=atol)


TEACHER_HEAD = TeacherHead(randn(4, ROWS, H_TEACHER), randn(5, V + 1, H_TEACHER), randn(6, V + 1))
TEACHER_LOGITS = torch.nn.functional.linear(*TEACHER_HEAD)
TARGETS = torch.arange(ROWS) % (V + 2)


@pytest.mark.parametrize(("kind", "beta"), KINDS)
@pytest.mark.parametrize(("top_k", "mode"), TOP_K)
@pytest.mark.parametrize("teacher_as_head", [False, True])
def test_fused_matches_the_oracle_in_loss_and_every_gradient(
    kind, beta, top_k, mode, teacher_as_head
):
    kd = KDOptions(kind, 2.5, True, beta, top_k, mode)
    weights = dict(kd=kd, ce_weight=0.3, kd_weight=0.7, kd_vocab=V)
    tensors = params(with_bias=True)
    teacher = TEACHER_HEAD if teacher_as_head else TEACHER_LOGITS
    out = fused_logits_loss(*tensors, teacher, TARGETS, MASK, **weights, chunk_rows=2, block_rows=4)
    grads = grads_of(out.total, tensors)

    expected_tensors = params(with_bias=True)
    logits = torch.nn.functional.linear(*expected_tensors)[MASK]
    expected_ce = ce_sum(logits, TARGETS[MASK])
    expected_kd = oracle_kd(logits[:, :V], TEACHER_LOGITS[MASK][:, :V], kd)
    expected = 0.3 * expected_ce + 0.7 * expected_kd
    expected_grads = grads_of(expected, expected_tensors)

    assert_close(out.total, expected)
    assert_close(out.ce, expected_ce)
    assert_close(out.kd, expected_kd)
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        assert_close(grad, expected_grad)
    assert (grads[0][~MASK] == 0).all()


@pytest.mark.parametrize("with_bias", [False, True])
def test_masked_rows_are_never_read_and_the_upstream_scale_reaches_every_gradient(with_bias):
    hidden, weight, bias = params(with_bias)
    with torch.no_grad():
        hidden[~MASK] = float("nan")
    teacher = TEACHER_LOGITS.clone()
    teacher[~MASK] = float("nan")
    run = dict(kd=KDOptions("jsd"), ce_weight=0.5, kd_weight=0.5, kd_vocab=V, chunk_rows=3)
    out = fused_logits_loss(hidden, weight, bias, teacher, TARGETS, MASK, **run)
    grads = grads_of(out.total / 4.0, (hidden, weight, bias))
    assert torch.isfinite(out.total)
    assert all(g is None or torch.isfinite(g).all() for g in grads)

    clean = params(with_bias)
    clean_out = fused_logits_loss(*clean, TEACHER_LOGITS, TARGETS, MASK, **run)
    clean_grads = grads_of(clean_out.total, clean)
    assert_close(out.total, clean_out.total)
    assert_close(grads[0][MASK], clean_grads[0][MASK] / 4.0)
    assert_close(grads[1], clean_grads[1] / 4.0)
    if with_bias:
        assert_close(grads[2], clean_grads[2] / 4.0)


def test_an_all_masked_input_gives_zeros_and_zero_gradients():
    tensors = params(with_bias=True)
    mask = torch.zeros(ROWS, dtype=torch.bool)
    out = fused_logits_loss(
        *tensors, TEACHER_HEAD, TARGETS, mask, kd=KDOptions(top_k=3), ce_weight=0.5,
        kd_weight=0.5, kd_vocab=V,
    )  # fmt: skip
    assert out.total.item() == out.ce.item() == out.kd.item() == 0.0
    for grad in grads_of(out.total, tensors):
        assert (grad == 0).all()


def test_no_grad_gives_the_same_values():
    tensors = params(with_bias=False)
    run = dict(kd=KDOptions("reverse_kl", temperature=1.5), ce_weight=0.4, kd_weight=0.6)
    with_grad = fused_logits_loss(*tensors, TEACHER_HEAD, TARGETS, MASK, kd_vocab=V, **run)
    with torch.no_grad():
        plain = fused_logits_loss(*tensors, TEACHER_HEAD, TARGETS, MASK, kd_vocab=V, **run)
    assert plain.total.item() == pytest.approx(with_grad.total.item(), rel=1e-6)
    assert plain.kd.item() == pytest.approx(with_grad.kd.item(), rel=1e-6)


def test_a_bf16_head_gets_bf16_gradients_close_to_fp32():
    kd = KDOptions("forward_kl", temperature=2.0)
    run = dict(kd=kd, ce_weight=0.5, kd_weight=0.5, kd_vocab=V, chunk_rows=2, block_rows=4)
    exact = params(with_bias=True)
    out = fused_logits_loss(*exact, TEACHER_LOGITS, TARGETS, MASK, **run)
    expected = grads_of(out.total, exact)
    half = [t.detach().bfloat16().requires_grad_(True) for t in params(with_bias=True)]
    half_out = fused_logits_loss(*half, TEACHER_LOGITS.bfloat16(), TARGETS, MASK, **run)
    for grad, expected_grad in zip(grads_of(half_out.total, half), expected, strict=True):
        assert grad.dtype == torch.bfloat16
        assert_close(grad, expected_grad, rtol=5e-2, atol=2e-2)
    assert half_out.total.item() == pytest.approx(out.total.item(), rel=2e-2)
