"""sequence-length-exceeds-model and attention-layers-invalid."""

from __future__ import annotations

from distill_doctor.findings import Severity
from distill_doctor.rules import attention_layers_invalid, sequence_length_exceeds_model
from tests.rules.conftest import fixture_context


def test_sequence_length_against_both_models():
    [f] = sequence_length_exceeds_model.check(
        fixture_context("sequence-length-exceeds-model", "fail")
    )
    assert f.evidence["student_max_positions"] == 1024 == f.evidence["teacher_max_positions"]
    assert f.patch == {"max_length": 1024}


def test_sequence_length_bounded_by_the_teacher():
    [f] = sequence_length_exceeds_model.check(
        fixture_context("sequence-length-exceeds-model", "fail_teacher")
    )
    assert f.evidence["student_max_positions"] == 32768
    assert f.evidence["teacher_max_positions"] == 1024
    assert "the teacher (gpt2" in f.message and "the student" not in f.message
    assert f.patch == {"max_length": 1024}


def test_attention_indices_past_the_student():
    [f] = attention_layers_invalid.check(fixture_context("attention-layers-invalid", "fail"))
    assert f.severity is Severity.ERROR
    assert (f.evidence["student_layers"], f.evidence["teacher_layers"]) == (6, 24)
    assert "[6, 8]" in f.evidence["problems"]
    assert f.patch == {"attention_layers": [4]}


def test_attention_count_past_the_shallower_model():
    [f] = attention_layers_invalid.check(fixture_context("attention-layers-invalid", "fail_count"))
    assert f.patch == {"attention_layers": 6}


def test_attention_weight_without_layers_is_a_warning_without_patch():
    [f] = attention_layers_invalid.check(
        fixture_context("attention-layers-invalid", "fail_no_layers")
    )
    assert f.severity is Severity.WARNING and f.patch is None
