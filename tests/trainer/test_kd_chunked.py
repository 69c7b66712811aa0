"""The chunked logits loss against the straightforward one (`losses`, the oracle): the same
loss and the same gradient to fp32 tolerance, in every mode, whatever the chunk size."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from distill_doctor.config.schema import TrainConfig
from distill_doctor.trainer.kd_chunked import KDOptions, logits_loss
from distill_doctor.trainer.losses import DistillationLoss, ce_sum, kd_sum, top_k_kd_sum

V = 11
ROWS = 9
# Rows 3-6 masked: with chunk_rows=2 on the full rows, chunks of masked rows only.
MASK = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1, 1], dtype=torch.bool)
KINDS = [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5), ("jsd", 0.2)]
TOP_K = [(None, "tail"), (4, "tail"), (4, "renormalize"), (V, "tail")]


def logits(seed: int, vocab: int = V, scale: float = 2.0, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(ROWS, vocab, generator=g) * scale).to(dtype)


def oracle_kd(student, teacher, kd: KDOptions) -> torch.Tensor:
    options = dict(temperature=kd.temperature, kind=kd.kind, scale_t2=kd.scale_t2, beta=kd.beta)
    if kd.top_k is None:
        return kd_sum(student, teacher, **options)
    return top_k_kd_sum(student, teacher, k=kd.top_k, mode=kd.top_k_mode, **options)


def loss_and_grad(fn, student: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    student = student.detach().clone().requires_grad_(True)
    loss = fn(student)
    loss.backward()
    return loss.detach(), student.grad


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    torch.testing.assert_close(actual.float(), expected.float(), rtol=rtol, atol=atol)


@pytest.mark.parametrize(("kind", "beta"), KINDS)
@pytest.mark.parametrize(("top_k", "mode"), TOP_K)
@pytest.mark.parametrize(("temperature", "scale_t2"), [(1.0, True), (2.5, True), (2.5, False)])
def test_kd_matches_the_oracle_in_loss_and_gradient(kind, beta, top_k, mode, temperature, scale_t2):
    kd = KDOptions(kind, temperature, scale_t2, beta, top_k, mode)
    student, teacher = logits(1), logits(2)
    targets = torch.zeros(ROWS, dtype=torch.long)

    def chunked(s):
        out = logits_loss(
            s, teacher, targets, MASK, kd=kd, ce_weight=0.0, kd_weight=1.0, chunk_rows=2
        )
        assert out.kd.item() == pytest.approx(out.total.item(), rel=1e-6)
        return out.total

    loss, grad = loss_and_grad(chunked, student)
    expected_loss, expected_grad = loss_and_grad(
        lambda s: oracle_kd(s[MASK], teacher[MASK], kd), student
    )
    assert_close(loss, expected_loss)
    assert_close(grad, expected_grad)
    assert (grad[~MASK] == 0).all()


def test_jsd_beta_is_the_generalised_jsd_by_hand():
    """beta KL(p || m) + (1 - beta) KL(q || m), m = beta p + (1 - beta) q, in Python floats."""
    student, teacher, beta = logits(3), logits(4), 0.2
    expected = 0.0
    for row in range(ROWS):
        p = torch.softmax(teacher[row].double(), -1).tolist()
        q = torch.softmax(student[row].double(), -1).tolist()
        m = [beta * a + (1 - beta) * b for a, b in zip(p, q, strict=True)]
        expected += beta * sum(a * math.log(a / c) for a, c in zip(p, m, strict=True))
        expected += (1 - beta) * sum(b * math.log(b / c) for b, c in zip(q, m, strict=True))
    out = logits_loss(
        student,
        teacher,
        torch.zeros(ROWS, dtype=torch.long),
        torch.ones(ROWS, dtype=torch.bool),
        kd=KDOptions("jsd", beta=beta),
        ce_weight=0.0,
        kd_weight=1.0,
    )
    assert out.kd.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("chunk_rows", [1, 2, 4, 64])
def test_ce_and_kd_weighted_over_a_padded_vocabulary(chunk_rows):
    """CE over every student column, KD over the shared first V: the trainer's layout."""
    student, teacher = logits(5, V + 3), logits(6, V + 1)
    targets = torch.randint(0, V + 3, (ROWS,), generator=torch.Generator().manual_seed(0))
    kd = KDOptions("forward_kl", temperature=2.0, top_k=5)

    def chunked(s):
        out = logits_loss(
            s,
            teacher,
            targets,
            MASK,
            kd=kd,
            ce_weight=0.3,
            kd_weight=0.7,
            kd_vocab=V,
            chunk_rows=chunk_rows,
        )
        return out.total

    def oracle(s):
        ce = ce_sum(s[MASK], targets[MASK])
        return 0.3 * ce + 0.7 * oracle_kd(s[MASK][:, :V], teacher[MASK][:, :V], kd)

    loss, grad = loss_and_grad(chunked, student)
    expected_loss, expected_grad = loss_and_grad(oracle, student)
    assert_close(loss, expected_loss)
    assert_close(grad, expected_grad)


def test_masked_rows_are_never_read():
    student, teacher = logits(7), logits(8)
    for tensor in (student, teacher):
        tensor[~MASK] = float("nan")
    targets = torch.full((ROWS,), 10**6)  # out of range where masked: never gathered
    targets[MASK] = 1
    loss, grad = loss_and_grad(
        lambda s: (
            logits_loss(
                s,
                teacher,
                targets,
                MASK,
                kd=KDOptions("jsd"),
                ce_weight=0.5,
                kd_weight=0.5,
                chunk_rows=3,
            ).total
        ),
        student,
    )
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert (grad[~MASK] == 0).all() and (grad[MASK] != 0).any()


def test_an_all_masked_input_gives_zeros_and_a_zero_gradient():
    student, teacher = logits(9), logits(10)
    mask = torch.zeros(ROWS, dtype=torch.bool)
    targets = torch.zeros(ROWS, dtype=torch.long)
    out = logits_loss(
        student.requires_grad_(True),
        teacher,
        targets,
        mask,
        kd=KDOptions(top_k=3),
        ce_weight=0.5,
        kd_weight=0.5,
    )
    assert out.total.item() == out.ce.item() == out.kd.item() == 0.0
    out.total.backward()
    assert student.grad.shape == student.shape and (student.grad == 0).all()


def test_the_gradient_follows_the_upstream_scale_and_no_grad_gives_the_same_values():
    student, teacher = logits(11), logits(12)
    targets = torch.arange(ROWS) % V
    run = dict(kd=KDOptions("reverse_kl", temperature=1.5), ce_weight=0.4, kd_weight=0.6)
    _, grad = loss_and_grad(lambda s: logits_loss(s, teacher, targets, MASK, **run).total, student)
    _, scaled = loss_and_grad(
        lambda s: logits_loss(s, teacher, targets, MASK, **run).total / 8.0, student
    )
    assert_close(scaled, grad / 8.0)
    with torch.no_grad():
        plain = logits_loss(student.requires_grad_(True), teacher, targets, MASK, **run)
    with_grad = logits_loss(student, teacher, targets, MASK, **run)
    assert plain.total.item() == pytest.approx(with_grad.total.item(), rel=1e-6)
    assert plain.ce.item() == pytest.approx(with_grad.ce.item(), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_logits_get_a_gradient_of_their_dtype_close_to_fp32(dtype):
    student, teacher = logits(13, dtype=dtype), logits(14, dtype=dtype)
    kd = KDOptions("forward_kl", temperature=2.0)
    targets = torch.zeros(ROWS, dtype=torch.long)
    _, grad = loss_and_grad(
        lambda s: logits_loss(s, teacher, targets, MASK, kd=kd, ce_weight=0, kd_weight=1).total,
        student,
    )
    _, expected = loss_and_grad(
        lambda s: oracle_kd(s[MASK], teacher[MASK].float(), kd), student.float()
    )
    assert grad.dtype == dtype
    assert_close(grad, expected, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize(("kind", "beta"), KINDS)
@pytest.mark.parametrize(("top_k", "mode"), TOP_K)
def test_extreme_logits_stay_finite_and_match_the_oracle(kind, beta, top_k, mode):
    """Logits of scale 300 at T=1: most probabilities underflow fp32."""
    kd = KDOptions(kind, 1.0, True, beta, top_k, mode)
    student, teacher = logits(15, scale=300.0), logits(16, scale=300.0)
    targets = torch.zeros(ROWS, dtype=torch.long)
    loss, grad = loss_and_grad(
        lambda s: logits_loss(s, teacher, targets, MASK, kd=kd, ce_weight=0, kd_weight=1).total,
        student,
    )
    expected_loss, expected_grad = loss_and_grad(
        lambda s: oracle_kd(s[MASK], teacher[MASK], kd), student
    )
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert_close(loss, expected_loss, rtol=1e-4, atol=1e-3)
    assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)


def test_the_trainer_loss_reads_beta_and_chunk_size_from_the_config():
    layers = SimpleNamespace(num_hidden_layers=1, hidden_size=4, num_attention_heads=1)
    labels = torch.tensor([[1, 2, 3, -100], [4, 5, -100, -100], [6, 7, 8, 9]])
    g = torch.Generator().manual_seed(0)
    student = SimpleNamespace(logits=torch.randn(3, 4, V, generator=g))
    teacher = SimpleNamespace(logits=torch.randn(3, 4, V, generator=g))
    mask = labels[:, 1:] != -100
    expected = kd_sum(
        student.logits[:, :-1][mask],
        teacher.logits[:, :-1][mask],
        temperature=2.0,
        kind="jsd",
        beta=0.3,
    )
    values = set()
    for chunk in (1, 2, None):
        cfg = TrainConfig(
            ce_weight=0.0,
            kd_weight=1.0,
            kd_loss="jsd",
            kd_jsd_beta=0.3,
            temperature=2.0,
            kd_chunk_size=chunk,
        )
        out = DistillationLoss(cfg, layers, layers, V)(student, teacher, labels, 1.0)
        assert out["kd"].item() == pytest.approx(expected.item(), rel=1e-5)
        values.add(round(out["kd"].item(), 5))
    assert len(values) == 1


@pytest.mark.parametrize(("kind", "beta"), KINDS)
def test_thin_and_fat_tails_in_one_chunk(kind, beta):
    """Rows whose top-k tail underflows take the exact path beside rows that take the fast
    one, in the same chunk; the teacher's and the student's tails thin in different rows."""
    student, teacher = logits(17), logits(18)
    student[::2] *= 150.0
    teacher[1::3] *= 150.0
    kd = KDOptions(kind, 1.0, True, beta, 3, "tail")
    targets = torch.zeros(ROWS, dtype=torch.long)
    every_row = torch.ones(ROWS, dtype=torch.bool)
    loss, grad = loss_and_grad(
        lambda s: (
            logits_loss(s, teacher, targets, every_row, kd=kd, ce_weight=0, kd_weight=1).total
        ),
        student,
    )
    expected_loss, expected_grad = loss_and_grad(lambda s: oracle_kd(s, teacher, kd), student)
    assert_close(loss, expected_loss, rtol=1e-4, atol=1e-3)
    assert_close(grad, expected_grad, rtol=1e-4, atol=1e-5)
