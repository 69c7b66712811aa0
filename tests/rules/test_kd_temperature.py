"""kd-temperature-range: which side, and the T^2 factor."""

from __future__ import annotations

from distill_doctor.rules import kd_temperature_range
from tests.rules.conftest import fixture_context, make_context


def test_high_temperature_with_t2_scaling():
    [f] = kd_temperature_range.check(fixture_context("kd-temperature-range", "fail"))
    assert f.evidence["side"] == "high"
    assert f.evidence["t2_scaling"] is True
    assert f.evidence["kd_gradient_scale"] == 3.0 * 3.0
    assert "multiplied by 9" in f.fix


def test_low_temperature_without_t2_scaling():
    [f] = kd_temperature_range.check(fixture_context("kd-temperature-range", "fail_low"))
    assert f.evidence["side"] == "low"
    assert f.evidence["kd_gradient_scale"] == 1.0
    assert "overflow" in f.message


def test_silent_when_kd_is_off_or_the_temperature_not_given():
    assert kd_temperature_range.check(make_context({"temperature": 5.0, "kd_weight": 0})) == []
    # A Hugging Face file sets no KD key: the schema's default temperature is not the user's.
    assert kd_temperature_range.check(make_context({"batch_size": 4}, dialect="hf")) == []
