"""The seed run's config on its Kaggle P100: what the rules say, with its numbers."""

from __future__ import annotations

import json

import pytest

from distill_doctor.findings import Severity
from distill_doctor.rules import run_rules
from tests.rules.conftest import FIXTURES, make_context


@pytest.fixture
def findings():
    data = json.loads((FIXTURES / "seed" / "seed_broken.json").read_text())
    return {f.id: f for f in run_rules(make_context(data, gpu="p100"))}


def test_seed_scheduler_was_told_16x_too_many(findings):
    f = findings["scheduler-steps-mismatch"]
    assert f.evidence["direction"] == "told too many"
    assert (f.evidence["scheduler_steps"], f.evidence["optimizer_steps"]) == (75000, 4689)
    assert f.evidence["ratio"] == pytest.approx(16.0, abs=0.01)
    # LR ends at (75,000 - 4,688) / 74,000 of the peak: ~95%, nowhere near 0.
    assert f.evidence["final_lr_share_of_peak"] == pytest.approx(0.950, abs=1e-3)


def test_seed_other_findings(findings):
    assert findings["kd-temperature-range"].evidence["kd_gradient_scale"] == 9.0
    assert findings["full-vocab-kd-memory"].patch == {"kd_top_k": 256}
    warmup = findings["warmup-too-long"]
    assert warmup.evidence["warmup_share"] == pytest.approx(0.2133, abs=1e-4)
    assert findings["precision-unsupported"].severity is Severity.WARNING  # fp16, no tensor cores


def test_seed_errs_on_the_scheduler_only_and_the_patches_clear_what_they_touch(findings):
    errors = [f.id for f in findings.values() if f.severity is Severity.ERROR]
    assert errors == ["scheduler-steps-mismatch"]
    data = json.loads((FIXTURES / "seed" / "seed_broken.json").read_text())
    for finding in findings.values():
        data |= finding.patch or {}
    fixed = {f.id for f in run_rules(make_context(data, gpu="p100"))}
    assert fixed == {"kd-temperature-range"}  # its fix is a judgement call: no patch
