"""The memory estimate and the two memory rules, against hand arithmetic."""

from __future__ import annotations

import pytest

from distill_doctor.findings import Severity
from distill_doctor.rules import full_vocab_kd_memory, memory_over_budget
from distill_doctor.rules.memory_estimate import logits_memory, peak_training_memory
from tests.rules.conftest import fixture_context, make_context

GIB = 2**30
SEED_TOKENS = 2 * 384  # batch x max_length
GPT2_VOCAB = 50257
# A straightforward loss in fp16 with cross-entropy on: student logits 2 + their gradient 4
# + CE log-softmax 4 + teacher logits 2 + soft targets 4 + student log-softmax 4
# + pointwise KL 4 = 24 bytes.
FULL_BYTES = 2 + 4 + 4 + 2 + 4 + 4 + 4
# The chunked loss in fp16: student logits 2 + the gradient buffer 4 (fp32 under fp16)
# + teacher logits 2 = 8 bytes, plus 9 fp32 chunk buffers of 2**19 // V rows each.
CHUNKED_BYTES = 2 + 4 + 2
GPT2_WORKSPACE = 9 * (2**19 // GPT2_VOCAB) * GPT2_VOCAB * 4


def test_logits_memory_full_and_top_k():
    cfg = fixture_context("full-vocab-kd-memory", "fail").config
    full = SEED_TOKENS * GPT2_VOCAB * FULL_BYTES
    assert sum(logits_memory(cfg, GPT2_VOCAB, chunked=False).values()) == full
    narrowed = SEED_TOKENS * (256 * (2 + 4 + 4 + 8) + GPT2_VOCAB * (2 + 4 + 4 + 4))
    assert sum(logits_memory(cfg, GPT2_VOCAB, top_k=256, chunked=False).values()) == narrowed


def test_chunked_logits_memory_is_three_copies_and_top_k_narrows_nothing():
    cfg = fixture_context("full-vocab-kd-memory", "fail").config
    chunked = SEED_TOKENS * GPT2_VOCAB * CHUNKED_BYTES + GPT2_WORKSPACE
    assert sum(logits_memory(cfg, GPT2_VOCAB).values()) == chunked
    assert sum(logits_memory(cfg, GPT2_VOCAB, top_k=256).values()) == chunked


def test_chunked_workspace_follows_kd_chunk_size_and_stops_at_the_batch():
    cfg = make_context({"max_length": 10, "batch_size": 3, "kd_chunk_size": 4}).config
    assert logits_memory(cfg, 1000)["chunk_workspace"] == 9 * 4 * 1000 * 4
    cfg = make_context({"max_length": 10, "batch_size": 3}).config  # 524 rows > 30 tokens
    assert logits_memory(cfg, 1000)["chunk_workspace"] == 9 * 30 * 1000 * 4


def test_logits_memory_in_fp32_without_ce():
    cfg = make_context({"max_length": 10, "batch_size": 3, "ce_weight": 0}).config
    assert sum(logits_memory(cfg, 1000, chunked=False).values()) == 30 * 1000 * 4 * 6
    assert logits_memory(cfg, 1000)["logits_grad"] == 30 * 1000 * 4


def test_full_vocab_kd_memory_evidence_on_the_default_16_gb():
    [f] = full_vocab_kd_memory.check(fixture_context("full-vocab-kd-memory", "fail"))
    ev = f.evidence
    full = SEED_TOKENS * GPT2_VOCAB * FULL_BYTES
    saved = SEED_TOKENS * (GPT2_VOCAB * (2 + 4 + 4) - 256 * (2 + 4 + 4 + 8))
    assert ev["logits_gib"] == pytest.approx(full / GIB, abs=1e-3)
    assert ev["share_of_gpu"] == pytest.approx(full / (16 * GIB), abs=1e-4)
    assert ev["saved_gib"] == pytest.approx(saved / GIB, abs=1e-3)
    assert ev["bytes_per_token_and_class"] == FULL_BYTES
    assert "assumed" in ev["gpu"] and ev["vocab_source"] == "distilgpt2 (built-in table)"


def test_full_vocab_kd_memory_uses_the_named_gpu():
    data = fixture_context("full-vocab-kd-memory", "fail").config.model_dump()
    assert full_vocab_kd_memory.check(make_context(data, gpu="a100-80gb")) == []


def test_peak_memory_breakdown_by_hand():
    ctx = fixture_context("memory-over-budget", "fail")  # gpt2-medium -> gpt2, fp16, T4
    teacher, student = 354_823_168, 124_439_808
    tokens, layers, hidden, heads, length, batch = 32 * 512, 12, 768, 12, 512, 32
    activations = layers * (34 * length * batch * hidden + 5 * heads * length**2 * batch)
    expected = {
        "teacher_weights": teacher * 2,
        "student_weights": student * 2,
        "student_gradients": student * 2,
        "optimizer_state": student * 12,  # two fp32 moments + fp32 master weights
        "logits": tokens * GPT2_VOCAB * CHUNKED_BYTES + GPT2_WORKSPACE,
        "activations": activations,
    }
    breakdown = peak_training_memory(ctx.config, ctx.student, ctx.teacher, GPT2_VOCAB)
    assert {k: v for k, v in breakdown.items() if k != "total"} == expected
    assert breakdown["total"] == sum(expected.values())
    straightforward = peak_training_memory(
        ctx.config, ctx.student, ctx.teacher, GPT2_VOCAB, chunked=False
    )
    assert straightforward["logits"] == tokens * GPT2_VOCAB * FULL_BYTES
    [f] = memory_over_budget.check(ctx)
    assert f.severity is Severity.ERROR
    assert f.evidence["total_gib"] == pytest.approx(sum(expected.values()) / GIB, abs=1e-3)
    assert f.evidence["share_of_gpu"] == pytest.approx(sum(expected.values()) / (16 * GIB), 1e-3)


def test_fp32_doubles_activations_and_drops_the_master_copy():
    ctx = make_context({"student_model": "gpt2", "max_length": 8, "batch_size": 1})
    breakdown = peak_training_memory(ctx.config, ctx.student, None, GPT2_VOCAB, with_kd=False)
    assert breakdown["optimizer_state"] == 124_439_808 * 8
    assert breakdown["student_weights"] == 124_439_808 * 4
    assert breakdown["teacher_weights"] == 0
    assert breakdown["activations"] == 12 * (34 * 8 * 768 + 5 * 12 * 64) * 2


def test_memory_over_budget_warns_between_90_and_100_percent():
    data = fixture_context("memory-over-budget", "fail").config.model_dump()
    total = peak_training_memory(
        make_context(data).config,
        make_context(data).student,
        make_context(data).teacher,
        GPT2_VOCAB,
    )["total"]
    gb = total / GIB / 0.95  # a card the estimate fills to 95%
    [f] = memory_over_budget.check(make_context(data, gpu=f"{gb:.3f}"))
    assert f.severity is Severity.WARNING
    assert f.evidence["share_of_gpu"] == pytest.approx(0.95, abs=2e-3)


def test_fused_lm_head_keeps_one_block_of_logits_and_the_head_gradient():
    """kd_fused_lm_head in fp16: no [B, L, V] logits; a block of 2**23 // V = 166 rows (the
    student's fp16 logits, their fp32 gradient, the teacher's fp16 logits), the chunk
    buffers, the fp32 gradients of the hidden state and of the lm_head (beside its fp16 one)
    and an fp32 copy of the lm_head's weight."""
    data = {"student_model": "gpt2", "max_length": 384, "batch_size": 2, "fp16": True}
    ctx = make_context({**data, "kd_fused_lm_head": True})
    rows, hidden = 2**23 // GPT2_VOCAB, 768
    expected = (
        rows * GPT2_VOCAB * (2 + 4 + 2)
        + SEED_TOKENS * hidden * 4
        + GPT2_VOCAB * hidden * (4 + 4)
        + GPT2_WORKSPACE
    )
    fused = peak_training_memory(ctx.config, ctx.student, ctx.student, GPT2_VOCAB)
    assert fused["logits"] == expected
    plain_ctx = make_context(data)
    plain = peak_training_memory(plain_ctx.config, plain_ctx.student, plain_ctx.student, GPT2_VOCAB)
    assert plain["logits"] == SEED_TOKENS * GPT2_VOCAB * CHUNKED_BYTES + GPT2_WORKSPACE
    assert fused["total"] - fused["logits"] == plain["total"] - plain["logits"]


def test_full_vocab_kd_memory_is_silent_when_the_fused_head_keeps_no_logits():
    data = fixture_context("full-vocab-kd-memory", "fail").config.model_dump()
    assert full_vocab_kd_memory.check(make_context(data)) != []
    data["kd_fused_lm_head"] = True
    assert full_vocab_kd_memory.check(make_context(data)) == []
    # A Hugging Face script runs its own (straightforward) loss whatever the key says.
    assert full_vocab_kd_memory.check(make_context(data, dialect="hf")) != []
