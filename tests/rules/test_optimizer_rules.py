"""lr-out-of-range and grad-clip-missing."""

from __future__ import annotations

import json

import pytest

from distill_doctor.findings import Severity
from distill_doctor.rules import grad_clip_missing, lr_out_of_range
from tests.rules.conftest import fixture_context, make_context

RULE = "lr-out-of-range"


@pytest.mark.parametrize(
    ("case", "severity", "side", "high"),
    [
        ("fail", Severity.WARNING, "high", 1e-3),
        ("fail_diverges", Severity.ERROR, "high", 1e-3),
        ("fail_large_student", Severity.WARNING, "high", 3e-4),
        ("fail_low", Severity.WARNING, "low", 1e-3),
    ],
)
def test_lr_sides_and_severities(case, severity, side, high):
    [f] = lr_out_of_range.check(fixture_context(RULE, case))
    assert (f.severity, f.evidence["side"], f.evidence["sane_high"]) == (severity, side, high)


def test_large_student_params_in_evidence():
    [f] = lr_out_of_range.check(fixture_context(RULE, "fail_large_student"))
    assert f.evidence["student_params"] == 1_543_714_304


def test_grad_clip_zero_and_null():
    for case in ("fail", "fail_zero"):
        [f] = grad_clip_missing.check(fixture_context("grad-clip-missing", case))
        assert f.patch == {"max_grad_norm": 1.0}


def test_tiny_students_get_a_higher_bound(tmp_path):
    config = {
        "model_type": "gpt2",
        "vocab_size": 512,
        "n_positions": 128,
        "n_layer": 2,
        "n_embd": 64,
        "n_head": 4,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    data = {"student_model": str(tmp_path), "learning_rate": 3e-3}
    assert lr_out_of_range.check(make_context(data)) == []
    [f] = lr_out_of_range.check(make_context({**data, "learning_rate": 6e-3}))
    assert f.evidence["sane_high"] == 5e-3
    assert "a 0.141M-parameter student" in f.message  # 512x64 + 128x64 + 2 x 49,984 + 128
