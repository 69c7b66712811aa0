"""The candidate-block top-k (`top_k_select`) against torch.topk: the same values (as a
multiset: the order is free, and so is the choice among columns tied at the k-th value),
columns that hold them, never a column twice; and top-k KD through it against the oracle."""

from __future__ import annotations

import pytest
import torch

from distill_doctor.trainer.kd_chunked import KDOptions, logits_loss
from distill_doctor.trainer.kd_fused import fused_logits_loss
from distill_doctor.trainer.losses import top_k_kd_sum
from distill_doctor.trainer.top_k_select import (
    LEVEL_BLOCKS,
    MIN_WIDTH_RATIO,
    block_top_k,
    candidates,
    top_k,
)


def randn(seed: int, *shape: int, scale: float = 3.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def assert_same_top_k(x: torch.Tensor, k: int, found) -> None:
    expected = x.topk(k, -1).values
    values, columns = found
    assert values.shape == columns.shape == (x.shape[0], k)
    assert columns.dtype == torch.long
    assert ((columns >= 0) & (columns < x.shape[1])).all()
    sorted_columns = columns.sort(-1).values
    assert (sorted_columns[:, 1:] > sorted_columns[:, :-1]).all(), "a column came back twice"
    torch.testing.assert_close(x.gather(-1, columns), values, rtol=0, atol=0, equal_nan=True)
    # sort puts NaN last on both sides, as topk ranks it first: the multisets must match
    torch.testing.assert_close(
        values.sort(-1).values, expected.sort(-1).values, rtol=0, atol=0, equal_nan=True
    )


# (width, k, blocks, candidates left): whole blocks only; left-over columns at level one; at
# both levels (k * 13 is no multiple of 3); one level only; the trainer's width
SHAPES = [
    (1024, 4, (32, 8), 4 * 8),
    (1000, 4, (32, 8), 4 * 8 + 8),
    (777, 4, (13, 3), 4 * 3 + 1 + 10),
    (4000, 7, (16,), 7 * 16),
    (50257, 256, LEVEL_BLOCKS, 256 * 8 + 17),
    (50257, 64, LEVEL_BLOCKS, 64 * 8 + 17),
]


@pytest.mark.parametrize(("width", "k", "blocks", "left"), SHAPES)
def test_the_same_values_as_torch_topk_on_random_rows(width, k, blocks, left):
    x = randn(width + k, 5, width)
    assert candidates(x, k, blocks)[0].shape == (5, left)  # every level ran
    assert_same_top_k(x, k, block_top_k(x, k, blocks))


@pytest.mark.parametrize(("width", "k", "blocks", "left"), SHAPES[:4])
def test_ties_everywhere_and_at_the_k_boundary(width, k, blocks, left):
    """Five distinct values in the whole row: most blocks tie on their max, and the k-th
    value is shared by hundreds of columns."""
    g = torch.Generator().manual_seed(width)
    x = torch.randint(0, 5, (6, width), generator=g).float()
    x[1] = 1.0  # one value everywhere
    x[2, ::97] = 9.0  # a few large ones, fewer than k in some cases, then ties
    assert_same_top_k(x, k, block_top_k(x, k, blocks))


@pytest.mark.parametrize("k", [6, 7, 20, 25, 26, 63, 64, 100])
def test_k_close_to_the_width_up_to_the_width(k):
    """From the widest k that takes blocks (6 of 25) to k == V; above 6, MIN_WIDTH_RATIO sends
    them to torch.topk, before there are fewer blocks than k (26 and up)."""
    x = randn(k, 4, 100)
    assert_same_top_k(x, k, block_top_k(x, k, (4, 2)))


def test_a_level_runs_only_on_rows_wide_enough_for_it():
    x = randn(3, 2, 600)
    for k in (1, 2, 4, 5):
        assert_same_top_k(x, k, block_top_k(x, k, (32, 8)))
    assert 4 * 32 * MIN_WIDTH_RATIO <= 600 < 5 * 32 * MIN_WIDTH_RATIO


def test_minus_infinity_and_nan_rows_as_torch_topk():
    x = randn(4, 6, 1000)
    x[0] = float("-inf")  # every value -inf: any k distinct columns
    x[1, 5:] = float("-inf")  # fewer finite values than k
    x[2, 300] = float("nan")
    x[3, ::40] = float("nan")  # more NaNs than k: NaN ranks first, as in torch.topk
    x[4, 10:500] = float("inf")
    assert_same_top_k(x, 8, block_top_k(x, 8, (16, 4)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_views_of_wider_rows_and_half_dtypes(dtype):
    """The teacher's chunk is a slice of its rows (kd_vocab columns of a padded vocab) and
    may be 16-bit; a transposed input has no unit column stride."""
    wide = randn(7, 9, 1200).to(dtype)
    assert_same_top_k(wide[2:7, :1037], 6, block_top_k(wide[2:7, :1037], 6, (32, 8)))
    tall = randn(8, 1100, 4).to(dtype).T
    assert_same_top_k(tall, 5, block_top_k(tall, 5, (32, 8)))
    assert_same_top_k(wide[:0], 3, block_top_k(wide[:0], 3, (32, 8)))


# KD at V = 1,000 with k = 4: both levels of LEVEL_BLOCKS run, 8 columns left over
V, K, ROWS = 1000, 4, 7
MASK = torch.tensor([1, 1, 0, 0, 1, 1, 1], dtype=torch.bool)
KINDS = [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.3)]


def oracle(student, teacher, kd: KDOptions) -> torch.Tensor:
    return top_k_kd_sum(
        student, teacher, k=kd.top_k, mode=kd.top_k_mode, temperature=kd.temperature,
        kind=kd.kind, scale_t2=kd.scale_t2, beta=kd.beta,
    )  # fmt: skip


def loss_and_grad(fn, student):
    student = student.detach().clone().requires_grad_(True)
    loss = fn(student)
    loss.backward()
    return loss.detach(), student.grad


def test_kd_width_runs_every_level_of_the_selection():
    assert V >= MIN_WIDTH_RATIO * K * LEVEL_BLOCKS[0] and V % LEVEL_BLOCKS[0]


def chunked_and_oracle(student, teacher, kd: KDOptions, chunk_rows: int):
    """(loss, grad) of the chunked KD loss over MASK's rows, then the oracle's."""
    targets = torch.zeros(ROWS, dtype=torch.long)
    loss, grad = loss_and_grad(
        lambda s: (
            logits_loss(
                s, teacher, targets, MASK, kd=kd, ce_weight=0.0, kd_weight=1.0,
                chunk_rows=chunk_rows,
            ).total
        ),
        student,
    )  # fmt: skip
    return (loss, grad, *loss_and_grad(lambda s: oracle(s[MASK], teacher[MASK], kd), student))


@pytest.mark.parametrize(("kind", "beta"), KINDS)
@pytest.mark.parametrize("mode", ["tail", "renormalize"])
def test_top_k_kd_through_the_selection_matches_the_oracle(kind, beta, mode):
    kd = KDOptions(kind, 2.0, True, beta, K, mode)
    student, teacher = randn(1, ROWS, V), randn(2, ROWS, V)
    loss, grad, expected_loss, expected_grad = chunked_and_oracle(student, teacher, kd, 2)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kind", "beta"), KINDS)
def test_teacher_ties_at_the_k_boundary_give_the_oracle_loss_where_the_student_ties_too(kind, beta):
    """Which tied column enters the top k is arbitrary (here and in torch.topk alike), so the
    loss is defined only when the student does not tell the tied columns apart either."""
    teacher, student = randn(3, ROWS, V), randn(4, ROWS, V)
    tied = torch.tensor([17, 250, 251, 640, 999])  # the 4th to 8th largest, all equal
    teacher[:, :3] = 20.0 + torch.arange(3.0)
    teacher[:, tied] = 15.0
    student[:, tied] = student[:, tied[:1]]
    kd = KDOptions(kind, 1.0, True, beta, K, "tail")
    every_row = torch.ones(ROWS, dtype=torch.bool)
    targets = torch.zeros(ROWS, dtype=torch.long)
    loss, _ = loss_and_grad(
        lambda s: (
            logits_loss(s, teacher, targets, every_row, kd=kd, ce_weight=0, kd_weight=1).total
        ),
        student,
    )
    torch.testing.assert_close(loss, oracle(student, teacher, kd), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kind", "beta"), KINDS)
def test_a_student_logit_far_above_its_logits_at_the_teachers_top_k(kind, beta):
    """The student's exps are shifted by its largest logit among the teacher's top k: rows
    where another of its logits is 500 above that overflow and are redone with the row max."""
    teacher, student = randn(7, ROWS, V), randn(8, ROWS, V)
    teacher[:, [700, 999]] = -10.0  # outside the teacher's top k
    student[1, 700] = 500.0
    student[4, 999] = 120.0  # 120 at T = 1 overflows fp32's exp as well
    kd = KDOptions(kind, 1.0, True, beta, K, "tail")
    loss, grad, expected_loss, expected_grad = chunked_and_oracle(student, teacher, kd, 3)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_a_teacher_row_of_nan_or_minus_infinity_gives_a_nan_loss_as_before():
    teacher, student = randn(5, ROWS, V), randn(6, ROWS, V)
    kd = KDOptions("forward_kl", 1.0, True, 0.5, K, "tail")
    targets = torch.zeros(ROWS, dtype=torch.long)
    every_row = torch.ones(ROWS, dtype=torch.bool)
    for bad in (float("nan"), float("-inf")):
        broken = teacher.clone()
        broken[3] = bad
        out = logits_loss(student, broken, targets, every_row, kd=kd, ce_weight=0, kd_weight=1)
        assert out.kd.isnan()
        assert oracle(student, broken, kd).isnan()


@pytest.mark.parametrize("mode", ["tail", "renormalize"])
def test_the_fused_head_loss_shares_the_selection(mode):
    hidden = randn(7, ROWS, 6, scale=1.0).requires_grad_(True)
    weight = randn(8, V, 6, scale=1.0).requires_grad_(True)
    teacher = randn(9, ROWS, V)
    targets = torch.arange(ROWS)
    kd = KDOptions("jsd", 2.0, True, 0.5, K, mode)
    out = fused_logits_loss(
        hidden, weight, None, teacher, targets, MASK, kd=kd, ce_weight=0.5, kd_weight=1.0,
        chunk_rows=2, block_rows=4,
    )  # fmt: skip
    out.total.backward()
    grads = hidden.grad, weight.grad
    hidden.grad = weight.grad = None
    logits = (hidden @ weight.T)[MASK]
    ce = torch.nn.functional.cross_entropy(logits, targets[MASK], reduction="sum")
    expected = 0.5 * ce + oracle(logits, teacher[MASK], kd)
    expected.backward()
    torch.testing.assert_close(out.total, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], hidden.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], weight.grad, rtol=1e-5, atol=1e-5)


def test_top_k_picks_the_same_values_as_torch_topk_at_the_trainers_width():
    x = randn(10, 3, 50257)
    assert_same_top_k(x, 256, top_k(x, 256))
