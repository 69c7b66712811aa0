"""Each loss against a reference written differently: plain Python loops over positions with
math.exp/math.log (KL = sum p (log p - log q)), in float64."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_doctor.config.schema import TrainConfig
from distill_doctor.errors import InputError
from distill_doctor.trainer.losses import (
    DistillationLoss,
    count_valid_tokens,
    kd_sum,
    top_k_buckets,
    top_k_kd_sum,
)

V = 7
LABELS = torch.tensor([[5, 1, 2, -100, -100, -100], [3, 4, -100, 6, 0, 2]])
LAYERS = SimpleNamespace(num_hidden_layers=2, hidden_size=8, num_attention_heads=2)
TEACHER_LAYERS = SimpleNamespace(num_hidden_layers=4, hidden_size=12, num_attention_heads=2)


def config(**overrides) -> TrainConfig:
    base = dict(ce_weight=0.0, kd_weight=0.0, temperature=1.0)
    return TrainConfig(**{**base, **overrides})


def fake_out(seed: int, vocab: int = V, hidden: int = 8, layers: int = 2, grad: bool = False):
    """What a transformers model returns: logits, hidden_states (embeddings + one per layer),
    attentions (one softmaxed [B, heads, L, L] per layer, causal)."""
    g = torch.Generator().manual_seed(seed)
    batch, length = LABELS.shape
    logits = (torch.randn(batch, length, vocab, generator=g) * 2).requires_grad_(grad)
    hidden_states = tuple(
        torch.randn(batch, length, hidden, generator=g).requires_grad_(grad)
        for _ in range(layers + 1)
    )
    causal = torch.ones(length, length).tril().bool()
    scores = [torch.randn(batch, 2, length, length, generator=g) for _ in range(layers)]
    attentions = tuple(s.masked_fill(~causal, float("-inf")).softmax(-1) for s in scores)
    return SimpleNamespace(logits=logits, hidden_states=hidden_states, attentions=attentions)


def valid_rows(labels: torch.Tensor):
    """(b, t) of every position whose next label counts, by loops."""
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            if labels[b, t + 1].item() != -100:
                yield b, t


def softmax(row, temperature=1.0):
    top = max(row)
    exps = [math.exp((x - top) / temperature) for x in row]
    return [e / sum(exps) for e in exps]


def kl(p, q):
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True) if pi > 0)


def divergence(kind, p, q):
    if kind == "forward_kl":
        return kl(p, q)
    if kind == "reverse_kl":
        return kl(q, p)
    mix = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    return 0.5 * kl(p, mix) + 0.5 * kl(q, mix)


def rows(tensor, b, t):
    return tensor[b, t].double().tolist()


def test_count_valid_tokens_after_the_causal_shift():
    assert count_valid_tokens(LABELS) == len(list(valid_rows(LABELS))) == 6
    assert count_valid_tokens(torch.full((3, 4), -100)) == 0


def test_ce_matches_a_loop_over_valid_tokens():
    student = fake_out(1)
    expected = sum(
        -math.log(softmax(rows(student.logits, b, t))[LABELS[b, t + 1]])
        for b, t in valid_rows(LABELS)
    )
    out = DistillationLoss(config(ce_weight=1.0), LAYERS, LAYERS, V)(
        student, fake_out(2), LABELS, 4.0
    )
    assert out["ce"].item() == pytest.approx(expected / 4.0, rel=1e-5)
    assert set(out) == {"loss", "ce"}
    assert out["loss"].item() == pytest.approx(out["ce"].item())


@pytest.mark.parametrize("kind", ["forward_kl", "reverse_kl", "jsd"])
@pytest.mark.parametrize("scale_t2", [True, False])
def test_kd_matches_the_reference_with_the_t_squared_factor(kind, scale_t2):
    student, teacher = fake_out(1), fake_out(2)
    temperature = 2.5
    expected = sum(
        divergence(
            kind,
            softmax(rows(teacher.logits, b, t), temperature),
            softmax(rows(student.logits, b, t), temperature),
        )
        for b, t in valid_rows(LABELS)
    ) * (temperature**2 if scale_t2 else 1.0)
    cfg = config(kd_weight=0.5, kd_loss=kind, temperature=temperature, kd_scale_t2=scale_t2)
    out = DistillationLoss(cfg, LAYERS, LAYERS, V)(student, teacher, LABELS, 3.0)
    assert out["kd"].item() == pytest.approx(expected / 3.0, rel=1e-5)
    assert out["loss"].item() == pytest.approx(0.5 * expected / 3.0, rel=1e-5)


def test_kd_kinds_differ_and_vanish_on_identical_distributions():
    student, teacher = torch.randn(5, V), torch.randn(5, V)
    values = {
        k: kd_sum(student, teacher, temperature=1.0, kind=k).item()
        for k in ("forward_kl", "reverse_kl", "jsd")
    }
    assert len({round(v, 6) for v in values.values()}) == 3
    assert values["jsd"] <= math.log(2) * 5  # JSD is bounded by log 2 per position
    for kind in values:
        assert kd_sum(teacher, teacher, temperature=3.0, kind=kind).item() == pytest.approx(
            0.0, abs=1e-6
        )


def hand_top_k(p_teacher, q_student, k, mode):
    """Buckets by hand: the teacher's k most likely ids, then renormalised or with a tail."""
    ids = sorted(range(len(p_teacher)), key=lambda i: -p_teacher[i])[:k]
    p = [p_teacher[i] for i in ids]
    q = [q_student[i] for i in ids]
    if mode == "renormalize":
        return [x / sum(p) for x in p], [x / sum(q) for x in q]
    return p + [1 - sum(p)], q + [1 - sum(q)]


@pytest.mark.parametrize("mode", ["tail", "renormalize"])
@pytest.mark.parametrize("kind", ["forward_kl", "jsd"])
def test_top_k_kd_matches_a_hand_computation(mode, kind):
    student, teacher = fake_out(3), fake_out(4)
    k, temperature = 3, 2.0
    expected = 0.0
    for b, t in valid_rows(LABELS):
        p, q = hand_top_k(
            softmax(rows(teacher.logits, b, t), temperature),
            softmax(rows(student.logits, b, t), temperature),
            k,
            mode,
        )
        assert sum(p) == pytest.approx(1.0) and sum(q) == pytest.approx(1.0)
        expected += divergence(kind, p, q)
    cfg = config(
        kd_weight=1.0, kd_top_k=k, kd_top_k_mode=mode, kd_loss=kind, temperature=temperature
    )
    out = DistillationLoss(cfg, LAYERS, LAYERS, V)(student, teacher, LABELS, 1.0)
    assert out["kd"].item() == pytest.approx(expected * temperature**2, rel=1e-5)


def test_the_k_plus_one_buckets_sum_to_one_for_teacher_and_student():
    teacher_logp = torch.randn(6, V).log_softmax(-1)
    student_logp = torch.randn(6, V).log_softmax(-1)
    ids = teacher_logp.topk(4, dim=-1).indices
    for logp in (teacher_logp, student_logp):
        buckets = top_k_buckets(logp, ids, "tail")
        assert buckets.shape == (6, 5)
        torch.testing.assert_close(buckets.exp().sum(-1), torch.ones(6))
        torch.testing.assert_close(buckets[:, :4], logp.gather(-1, ids))


def test_tail_stays_exact_when_the_top_k_hold_almost_all_the_mass():
    # The tail here is ~e^-60: 1 - sum(p_topk) rounds to 0 in fp32, the logsumexp does not.
    logits = torch.tensor([[60.0, 59.0, 0.0, 0.0, 0.0]])
    logp = logits.log_softmax(-1)
    tail = top_k_buckets(logp, torch.tensor([[0, 1]]), "tail")[0, 2].item()
    exact = math.log(3.0) - math.log(math.exp(60.0) + math.exp(59.0) + 3.0)
    assert tail == pytest.approx(exact, rel=1e-6)


def test_top_k_equal_to_the_vocab_is_finite_and_equals_full_kd():
    student, teacher = torch.randn(4, V, requires_grad=True), torch.randn(4, V)
    top = top_k_kd_sum(student, teacher, k=V, mode="tail", temperature=2.0)
    full = kd_sum(student, teacher, temperature=2.0)
    assert top.item() == pytest.approx(full.item(), rel=1e-5)
    top.backward()
    assert torch.isfinite(student.grad).all()


def test_top_k_larger_than_the_vocab_is_an_input_error():
    with pytest.raises(InputError, match="kd_top_k is 9 but .* only 7 tokens"):
        DistillationLoss(config(kd_weight=1.0, kd_top_k=9), LAYERS, LAYERS, V)


def all_components() -> TrainConfig:
    return config(
        ce_weight=0.3,
        kd_weight=0.7,
        feature_weight=0.2,
        attention_weight=0.1,
        attention_layers=2,
        kd_top_k=3,
    )


def test_masked_positions_change_nothing():
    loss = DistillationLoss(all_components(), LAYERS, LAYERS, V)
    student, teacher = fake_out(5), fake_out(6)
    before = loss(student, teacher, LABELS, 6.0)
    masked = torch.ones(LABELS.shape, dtype=torch.bool)
    for b, t in valid_rows(LABELS):
        masked[b, t] = False
    for out in (student, teacher):
        out.logits[masked] = 1e4 * torch.randn_like(out.logits[masked])
        for hidden in out.hidden_states:
            hidden[masked] = 1e3
        for attn in out.attentions:
            attn.transpose(1, 2)[masked] = 1.0 / LABELS.shape[1]
    after = loss(student, teacher, LABELS, 6.0)
    assert set(before) == {"loss", "ce", "kd", "feature", "attention"}
    for name in before:
        assert after[name].item() == pytest.approx(before[name].item(), rel=1e-6), name


def test_an_all_masked_batch_gives_finite_zeros_and_finite_gradients():
    loss = DistillationLoss(all_components(), LAYERS, LAYERS, V)
    student = fake_out(7, grad=True)
    labels = torch.full(LABELS.shape, -100)
    out = loss(student, fake_out(8), labels, max(count_valid_tokens(labels), 1))
    assert all(value.item() == 0.0 for value in out.values())
    out["loss"].backward()
    grads = [student.logits.grad, *(h.grad for h in student.hidden_states)]
    grads += [p.grad for p in loss.parameters()]
    assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_micro_batches_summed_equal_one_batch_of_both():
    loss = DistillationLoss(all_components(), LAYERS, LAYERS, V)
    student, teacher = fake_out(9), fake_out(10)
    whole = loss(student, teacher, LABELS, count_valid_tokens(LABELS))

    def half(out, i):
        return SimpleNamespace(
            logits=out.logits[i : i + 1],
            hidden_states=tuple(h[i : i + 1] for h in out.hidden_states),
            attentions=tuple(a[i : i + 1] for a in out.attentions),
        )

    denominator = count_valid_tokens(LABELS)  # the accumulated batch's, for both micro-batches
    parts = [
        loss(half(student, i), half(teacher, i), LABELS[i : i + 1], denominator) for i in range(2)
    ]
    for name in whole:
        summed = parts[0][name] + parts[1][name]
        assert summed.item() == pytest.approx(whole[name].item(), rel=1e-5), name


@pytest.mark.parametrize("kind", ["mse", "cosine"])
def test_feature_loss_through_the_projections(kind):
    cfg = config(feature_weight=1.0, feature_loss=kind, layer_map=[(0, 1), (1, 3)])
    loss = DistillationLoss(cfg, LAYERS, TEACHER_LAYERS, V)
    student, teacher = fake_out(11), fake_out(12, hidden=12, layers=4)
    assert len(loss.projections) == 2 and loss.needs_hidden_states and not loss.needs_attentions
    expected = 0.0
    for (s, t), proj in zip([(0, 1), (1, 3)], loss.projections, strict=True):
        weight, bias = proj.weight.double().tolist(), proj.bias.double().tolist()
        for b, pos in valid_rows(LABELS):
            h = rows(student.hidden_states[s + 1], b, pos)
            y = [
                sum(w * x for w, x in zip(w_row, h, strict=True)) + c
                for w_row, c in zip(weight, bias, strict=True)
            ]
            target = rows(teacher.hidden_states[t + 1], b, pos)
            if kind == "mse":
                expected += sum((a - c) ** 2 for a, c in zip(y, target, strict=True)) / len(y)
            else:
                dot = sum(a * c for a, c in zip(y, target, strict=True))
                norms = math.sqrt(sum(a * a for a in y)) * math.sqrt(sum(c * c for c in target))
                expected += 1 - dot / norms
    out = loss(student, teacher, LABELS, 2.0)
    assert out["feature"].item() == pytest.approx(expected / 2 / 2.0, rel=1e-5)


def test_attention_loss_matches_a_row_by_row_kl():
    cfg = config(attention_weight=1.0, attention_layers=1)  # the last student layer
    loss = DistillationLoss(cfg, LAYERS, TEACHER_LAYERS, V)
    assert loss.attention_pairs == [(1, 3)] and loss.needs_attentions
    student, teacher = fake_out(13), fake_out(14, hidden=12, layers=4)
    expected = sum(
        sum(
            kl(rows(teacher.attentions[3][:, h], b, t), rows(student.attentions[1][:, h], b, t))
            for h in range(2)
        )
        / 2
        for b, t in valid_rows(LABELS)
    )
    out = loss(student, teacher, LABELS, 5.0)
    assert out["attention"].item() == pytest.approx(expected / 5.0, rel=1e-5)


def test_attention_head_mismatch_names_both_counts():
    teacher = SimpleNamespace(num_hidden_layers=4, hidden_size=12, num_attention_heads=3)
    cfg = config(attention_weight=0.1, attention_layers=1)
    with pytest.raises(
        InputError, match="student has 2 attention heads and the teacher 3.*attention_weight to 0"
    ):
        DistillationLoss(cfg, LAYERS, teacher, V)
    DistillationLoss(config(attention_weight=0.0), LAYERS, teacher, V)  # off: no complaint


def test_attention_without_layers_or_outside_the_map_is_an_input_error():
    with pytest.raises(InputError, match="attention_layers is 0, so no layer"):
        DistillationLoss(config(attention_weight=0.1), LAYERS, TEACHER_LAYERS, V)
    cfg = config(attention_weight=0.1, attention_layers=[0], layer_map=[(1, 3)])
    with pytest.raises(InputError, match=r"student layers \[0\]"):
        DistillationLoss(cfg, LAYERS, TEACHER_LAYERS, V)


def test_padded_vocab_rows_are_outside_kd():
    loss = DistillationLoss(config(kd_weight=1.0), LAYERS, LAYERS, V)
    student, teacher = fake_out(15, vocab=V + 3), fake_out(16, vocab=V + 5)
    before = loss(student, teacher, LABELS, 1.0)["kd"]
    student.logits[..., V:] = 50.0
    teacher.logits[..., V:] = -50.0
    assert loss(student, teacher, LABELS, 1.0)["kd"].item() == pytest.approx(before.item())


def test_gradients_reach_the_student_and_projections_never_the_teacher(tiny_pair):
    from distill_doctor.trainer.models import load_model

    student = load_model(str(tiny_pair.student), attn_implementation="eager")
    teacher = load_model(str(tiny_pair.teacher), attn_implementation="eager")  # not frozen
    loss = DistillationLoss(all_components(), student.config, teacher.config, 19)
    ids = torch.randint(3, 19, (2, 6), generator=torch.Generator().manual_seed(0))
    labels = ids.masked_fill(torch.tensor([[0, 0, 0, 0, 1, 1], [0] * 6]).bool(), -100)
    options = dict(output_hidden_states=True, output_attentions=True)
    out = loss(student(ids, **options), teacher(ids, **options), labels, 9.0)
    out["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.parameters())
    assert student.lm_head.weight.grad.abs().sum() > 0
    assert student.transformer.h[0].attn.c_attn.weight.grad.abs().sum() > 0


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(0.01, 200.0),
    k=st.integers(1, V),
    seed=st.integers(0, 10_000),
    kind=st.sampled_from(["forward_kl", "reverse_kl", "jsd"]),
    mode=st.sampled_from(["tail", "renormalize"]),
)
def test_top_k_kd_is_finite_and_non_negative_at_any_logit_scale(scale, k, seed, kind, mode):
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(3, V, generator=g) * scale).requires_grad_(True)
    teacher = torch.randn(3, V, generator=g) * scale
    loss = top_k_kd_sum(student, teacher, k=k, mode=mode, temperature=1.0, kind=kind)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() >= -1e-4
    assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize("top_k", [None, 4])
def test_a_student_trained_on_kd_alone_moves_towards_the_teacher(tiny_pair, top_k):
    from distill_doctor.trainer.models import freeze_teacher, load_model

    student, teacher = load_model(str(tiny_pair.student)), load_model(str(tiny_pair.teacher))
    freeze_teacher(teacher)
    loss = DistillationLoss(
        config(kd_weight=1.0, kd_top_k=top_k), student.config, teacher.config, 19
    )
    ids = torch.randint(3, 19, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # a random tiny teacher is near uniform: sharpen it so there is something to learn
        teacher_out = SimpleNamespace(logits=teacher(ids).logits * 30)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    history = []
    for _ in range(12):
        out = loss(student(ids), teacher_out, ids, count_valid_tokens(ids))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        history.append(out["kd"].item())
    assert history[-1] < 0.3 * history[0], history


def test_attention_dropout_in_the_student_adds_no_noise():
    """transformers returns attention maps after dropout: a student whose maps equal the
    teacher's before dropout must still score 0, and a dropped-out row keeps its gradient."""
    teacher = fake_out(17)
    student = fake_out(18)
    g = torch.Generator().manual_seed(0)
    dropped = tuple(
        (a * (torch.rand(a.shape, generator=g) > 0.3) / 0.7).requires_grad_(True)
        for a in teacher.attentions
    )
    student.attentions = dropped
    loss = DistillationLoss(config(attention_weight=1.0, attention_layers=2), LAYERS, LAYERS, V)
    out = loss(student, teacher, LABELS, 1.0)
    assert out["attention"].item() == pytest.approx(0.0, abs=1e-5)
    student.attentions = tuple(a.detach().roll(1, dims=-1).requires_grad_(True) for a in dropped)
    out = loss(student, teacher, LABELS, 1.0)
    out["loss"].backward()
    assert out["attention"].item() > 0.01
    assert all(torch.isfinite(a.grad).all() for a in student.attentions)
