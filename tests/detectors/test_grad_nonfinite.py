import math

from real_run_shapes import hf_fp16_one_skipped_step, lora_grad_inf_every_step
from streams import run_one, stream

from distill_doctor.detectors import run_detectors
from distill_doctor.detectors.grad_nonfinite import CONFIRM_RECORDS, GradNonfinite
from distill_doctor.findings import Severity


def test_inf_on_every_logged_step_is_one_error_with_the_totals():
    records = lora_grad_inf_every_step()
    [finding] = run_one(GradNonfinite, records)
    assert finding.severity is Severity.ERROR and finding.step == 3
    assert finding.evidence["count"] == finding.evidence["logged_steps"] == 130
    assert finding.evidence["last_step"] == 519 and finding.evidence["worst"] == "inf"
    assert "every one of the 130 logged steps" in finding.message


def test_the_live_alarm_comes_after_a_few_steps_and_finish_restates_it():
    detector = GradNonfinite()
    records = lora_grad_inf_every_step()
    alarms = [(i, f) for i, r in enumerate(records) for f in detector.update(r)]
    [(index, alarm)] = alarms
    assert index == CONFIRM_RECORDS - 1 and alarm.severity is Severity.ERROR
    [final] = detector.finish()
    assert (final.id, final.step) == (alarm.id, alarm.step) and final.evidence["count"] == 130


def test_a_few_skipped_steps_with_a_finite_loss_are_a_warning_naming_fp16():
    [finding] = run_one(GradNonfinite, hf_fp16_one_skipped_step())
    assert finding.severity is Severity.WARNING and finding.step == 1210
    assert "fp16/AMP" in finding.message and "finite loss" in finding.message
    assert finding.evidence["count"] == 1 and finding.evidence["logged_steps"] == 200


def test_a_first_step_overflow_then_healthy_is_a_warning():
    records = [{"step": 1, "loss": 18.2, "grad_norm": math.inf, "lr": 0.0}]
    records += [
        {"step": s, "loss": 6.9 - s / 100, "grad_norm": 0.7, "lr": 7e-5} for s in range(2, 60)
    ]
    [finding] = run_one(GradNonfinite, records)
    assert finding.severity is Severity.WARNING


def test_frequent_nan_norms_are_an_error():
    records = hf_fp16_one_skipped_step(lines=40, skipped=tuple(range(0, 40, 3)))
    [finding] = run_one(GradNonfinite, records)
    assert finding.severity is Severity.ERROR and finding.evidence["count"] == 14


def test_healthy_missing_and_junk_are_silent():
    assert run_one(GradNonfinite, stream(2000)) == []
    assert run_one(GradNonfinite, stream(300, drop={"grad_norm"})) == []
    assert run_one(GradNonfinite, [{"step": 1, "grad_norm": "n/a"}]) == []


def test_the_whole_suite_on_the_inf_run_names_the_gradient_not_only_a_flat_loss():
    ids = {f.id for f in run_detectors(lora_grad_inf_every_step())}
    assert "grad-nonfinite" in ids and "nonfinite-loss" not in ids


def test_other_nonfinite_series_are_named_by_their_key():
    records = [{"step": s, "loss": 1.0, "kl": 0.1} for s in range(1, 10)]
    records.append({"step": 10, "loss": 1.0, "kl": math.nan, "reward": 0.5})
    [finding] = [f for f in run_detectors(records) if f.id == "nonfinite-loss"]
    assert finding.evidence["field"] == "kl" and "Non-finite kl at step 10" in finding.message


def test_a_nan_gradient_beside_a_nan_loss_is_left_to_nonfinite_loss():
    records = [{"step": s, "loss": 2.0 / s, "grad_norm": 1.0} for s in range(1, 20)]
    records[2] = {"step": 3, "loss": math.nan, "grad_norm": math.nan}
    assert run_one(GradNonfinite, records) == []
    assert [f.id for f in run_detectors(records)] == ["nonfinite-loss"]
