"""eval-never-runs and eval-cadence."""

from __future__ import annotations

import math

import pytest

from distill_doctor.findings import Severity
from distill_doctor.rules import eval_cadence, eval_never_runs
from tests.rules.conftest import fixture_context, make_context

STEPS = 4689


def test_eval_past_the_end():
    [f] = eval_never_runs.check(fixture_context("eval-never-runs", "fail"))
    assert f.evidence["optimizer_steps"] == STEPS
    assert f.evidence["evaluations_during_training"] == 0
    assert f.patch == {"eval_steps": STEPS // 10}
    # The bundled trainer still evaluates before and after training: a warning, not an error.
    assert f.severity is Severity.WARNING and "before and after" in f.message


def test_eval_past_the_end_of_an_hf_run_is_an_error():
    data = {
        "train_samples": 50000,
        "batch_size": 2,
        "gradient_accumulation_steps": 16,
        "epochs": 3,
        "eval_steps": 5000,
    }
    [f] = eval_never_runs.check(make_context(data, dialect="hf"))
    assert f.severity is Severity.ERROR and "never happens" in f.message


def test_eval_every_step_costs_most_of_the_run():
    [f] = eval_cadence.check(fixture_context("eval-cadence", "fail"))
    held_out = 50000 * 0.05 / 0.95  # eval_fraction of the data, train_samples is the rest
    eval_cost = STEPS * held_out / 3
    share = eval_cost / (STEPS * 2 * 16 + eval_cost)
    assert f.evidence["eval_samples_per_eval"] == round(held_out)
    assert f.evidence["eval_share_of_time"] == pytest.approx(share, abs=1e-4)
    # At most n evals with n * held_out / 3 <= 0.1 / 0.9 * STEPS * 32: n = 19.
    n = math.floor(0.1 / 0.9 * STEPS * 32 / (held_out / 3))
    assert n == 19
    assert f.patch == {"eval_steps": math.ceil(STEPS / n)}


def test_unknown_eval_size_is_silent():
    data = {"train_samples": 50000, "batch_size": 2, "eval_steps": 1}
    assert eval_cadence.check(make_context(data, dialect="hf")) == []
    assert eval_cadence.check(make_context({**data, "eval_data": "eval.jsonl"})) == []
