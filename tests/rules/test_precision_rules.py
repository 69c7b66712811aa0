"""precision-unsupported and fp16-overflow-risk."""

from __future__ import annotations

from distill_doctor.findings import Severity
from distill_doctor.rules import fp16_overflow_risk, precision_unsupported
from tests.rules.conftest import fixture_context, make_context

RULE = "precision-unsupported"


def one(case):
    [f] = precision_unsupported.check(fixture_context(RULE, case))
    return f


def test_bf16_on_p100_and_v100():
    p100, v100 = one("fail"), one("fail_v100")
    assert p100.severity is Severity.ERROR and p100.evidence["recommended"] == "fp32"
    assert v100.evidence["recommended"] == "fp16"
    assert v100.patch == {"bf16": False, "fp16": True}
    assert v100.evidence["bf16_native"] is False


def test_fp16_where_it_buys_nothing():
    p100 = one("fail_fp16_p100")
    assert p100.severity is Severity.WARNING and "no tensor cores" in p100.message
    cpu = one("fail_cpu")
    assert cpu.severity is Severity.WARNING and cpu.patch == {"fp16": False}


def test_both_precisions_is_an_error():
    both = one("fail_both")
    assert both.severity is Severity.ERROR and both.patch == {"fp16": False}


def test_a_bare_size_is_assumed_modern():
    assert precision_unsupported.check(make_context({"bf16": True}, gpu="24")) == []


def test_fp16_with_bf16_released_models():
    [f] = fp16_overflow_risk.check(fixture_context("fp16-overflow-risk", "fail"))
    assert "teacher Qwen/Qwen2.5-1.5B" in f.evidence["reasons"]
    assert "student Qwen/Qwen2.5-0.5B" in f.evidence["reasons"]
    assert f.evidence["fp16_max"] == 65504.0


def test_fp16_with_a_low_temperature_has_no_patch_without_a_bf16_gpu():
    [f] = fp16_overflow_risk.check(fixture_context("fp16-overflow-risk", "fail_low_temperature"))
    assert "scales the logits by 2" in f.evidence["reasons"]
    assert f.patch is None
