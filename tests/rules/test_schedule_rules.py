"""scheduler-steps-mismatch and warmup-too-long: the evidence numbers, worked out by hand."""

from __future__ import annotations

import math

import pytest

from distill_doctor.findings import Severity
from distill_doctor.rules import scheduler_steps_mismatch, warmup_too_long
from distill_doctor.rules.lr_schedule import lr_multiplier
from tests.rules.conftest import fixture_context, make_context

# 50,000 samples / batch 2 = 25,000 micro-batches; ceil(25,000 / 16) = 1,563 steps per epoch.
REAL_STEPS = 1563 * 3


def test_told_too_many_ends_near_the_peak():
    [f] = scheduler_steps_mismatch.check(fixture_context("scheduler-steps-mismatch", "fail"))
    assert f.severity is Severity.ERROR  # ends above half the peak: the decay never happens
    ev = f.evidence
    assert ev["optimizer_steps"] == REAL_STEPS == 4689
    assert ev["scheduler_steps"] == 75000
    assert ev["ratio"] == pytest.approx(75000 / 4689, abs=1e-3)
    assert ev["direction"] == "told too many"
    # Linear decay from step 1,000 to 75,000; the last step runs after 4,688 scheduler steps.
    share = (75000 - 4688) / (75000 - 1000)
    assert ev["final_lr_share_of_peak"] == pytest.approx(share, abs=1e-4)
    assert ev["final_lr"] == pytest.approx(3e-5 * share)
    assert "95%" in f.message and "16.0x" in f.message


def test_told_too_few_reaches_zero_early():
    [f] = scheduler_steps_mismatch.check(
        fixture_context("scheduler-steps-mismatch", "fail_too_few")
    )
    assert f.severity is Severity.ERROR
    ev = f.evidence
    assert ev["direction"] == "told too few"
    assert ev["lr_floor_reached_at_step"] == 293
    assert ev["steps_at_lr_floor"] == 4689 - 293
    assert ev["share_of_training_at_lr_floor"] == pytest.approx(4396 / 4689, abs=1e-4)
    assert ev["lr_floor"] == 0


def test_told_too_few_with_a_floor_and_cosine():
    data = {
        "train_samples": 1000,
        "batch_size": 10,
        "num_training_steps": 50,
        "lr_scheduler": "cosine",
        "min_lr_ratio": 0.1,
        "learning_rate": 1e-4,
    }
    [f] = scheduler_steps_mismatch.check(make_context(data))
    assert f.evidence["lr_floor"] == pytest.approx(1e-5)
    assert f.evidence["share_of_training_at_lr_floor"] == pytest.approx(0.5)


def test_within_one_percent_and_constant_schedules_are_silent():
    close = {
        "train_samples": 50000,
        "batch_size": 2,
        "gradient_accumulation_steps": 16,
        "epochs": 3,
        "num_training_steps": 4687,
    }  # the seed's write-up's floor division
    assert scheduler_steps_mismatch.check(make_context(close)) == []
    constant = {
        "train_samples": 1000,
        "batch_size": 10,
        "num_training_steps": 10,
        "lr_scheduler": "constant",
    }
    assert scheduler_steps_mismatch.check(make_context(constant)) == []


def test_lr_multiplier_shapes():
    assert lr_multiplier(50, 1000, 100, "linear", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(550, 1000, 100, "linear", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(550, 1000, 100, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(325, 1000, 100, "cosine", 0.0) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 0.25))
    )
    assert lr_multiplier(5000, 1000, 100, "cosine", 0.2) == pytest.approx(0.2)
    assert lr_multiplier(5000, 1000, 100, "constant", 0.0) == 1.0


def test_a_small_overshoot_only_trims_the_decay_and_warns():
    data = {
        "train_samples": 50000,
        "batch_size": 2,
        "gradient_accumulation_steps": 16,
        "epochs": 3,
        "learning_rate": 3e-5,
        "num_training_steps": 6000,
    }
    [f] = scheduler_steps_mismatch.check(make_context(data))
    share = (6000 - 4688) / 6000  # no warmup: linear from the first step
    assert f.evidence["final_lr_share_of_peak"] == pytest.approx(share, abs=1e-4)
    assert share < scheduler_steps_mismatch.NEVER_DECAYS_SHARE
    assert f.severity is Severity.WARNING and "short of its decay" in f.message


def test_seed_warmup_is_a_fifth_of_the_real_steps():
    [f] = warmup_too_long.check(fixture_context("warmup-too-long", "fail"))
    assert f.severity is Severity.WARNING
    assert f.evidence["warmup_share"] == pytest.approx(1000 / 4689, abs=1e-4)
    assert f.evidence["suggested_warmup_steps"] == round(4689 * 0.05) == 234
    assert "warmup_share_of_scheduler_steps" not in f.evidence


def test_warmup_past_the_end_is_an_error():
    [f] = warmup_too_long.check(fixture_context("warmup-too-long", "fail_never_peaks"))
    assert f.severity is Severity.ERROR
    assert f.evidence["warmup_share"] == pytest.approx(5000 / 4689, abs=1e-4)
    assert "never reaches its peak" in f.message


def test_warmup_share_against_the_told_schedule_is_shown_too():
    data = {
        "train_samples": 50000,
        "batch_size": 2,
        "gradient_accumulation_steps": 16,
        "epochs": 3,
        "num_training_steps": 75000,
        "warmup_steps": 1000,
    }
    [f] = warmup_too_long.check(make_context(data))
    assert f.evidence["warmup_share_of_scheduler_steps"] == pytest.approx(1000 / 75000, abs=1e-4)
