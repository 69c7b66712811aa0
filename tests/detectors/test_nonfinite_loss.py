import math

from streams import run_one, stream

from distill_doctor.detectors.nonfinite_loss import CLEAN_RECORDS_TO_CLEAR, NonfiniteLoss

SEED_WARNING = "[Warning] lm_loss produced non-finite value (nan); clamping to zero."


def test_nan_loss_at_its_step():
    [finding] = run_one(NonfiniteLoss, stream(500, faults={"nan_loss": 123}))
    assert finding.step == 123
    assert finding.evidence["field"] in ("loss", "loss_kd") and finding.evidence["value"] == "nan"


def test_clamped_zero_loss_beside_nan_grad():
    [finding] = run_one(NonfiniteLoss, stream(500, faults={"clamped_nan": 77}))
    assert finding.step == 77
    assert finding.evidence["value"] == 0.0 and finding.evidence["grad_norm"] == "nan"


def test_warning_text():
    [finding] = run_one(NonfiniteLoss, stream(500, faults={"nan_warning": 250}))
    assert finding.step == 250 and "clamping to zero" in finding.evidence["warning"]


def test_nan_eval_and_inf_component():
    records = [{"step": 100, "eval_loss": float("nan")}]
    assert run_one(NonfiniteLoss, records)[0].evidence["field"] == "eval_loss"
    records = [{"step": 5, "loss": 3.0, "loss_feature": math.inf}]
    assert run_one(NonfiniteLoss, records)[0].evidence == {
        "step": 5,
        "field": "loss_feature",
        "value": "inf",
    }


def test_nan_throughout_is_one_finding_and_relapse_is_another():
    nan_run = [{"step": s, "loss": float("nan")} for s in range(1, 100)]
    relapse_at = 100 + CLEAN_RECORDS_TO_CLEAR
    clean = [{"step": s, "loss": 2.0} for s in range(100, relapse_at)]
    relapse = [{"step": relapse_at, "loss": float("nan")}]
    findings = run_one(NonfiniteLoss, nan_run + clean + relapse)
    assert [f.step for f in findings] == [1, relapse_at]
    # A NaN after a shorter clean stretch belongs to the same outbreak.
    early = [{"step": 100, "loss": 2.0}, {"step": 101, "loss": float("nan")}]
    assert [f.step for f in run_one(NonfiniteLoss, nan_run + early)] == [1]


def test_infinite_perplexity_and_nan_grad_alone_are_not_loss_problems():
    records = [
        {"step": 1, "loss": 30.0, "ppl": math.inf, "eval_ppl": math.inf},
        {"step": 2, "loss": 2.0, "grad_norm": math.inf},  # fp16 overflow, step skipped
    ]
    assert run_one(NonfiniteLoss, records) == []


def test_healthy_and_unrelated_warnings_are_silent():
    records = stream(500) + [{"step": 501, "warning": "tokenizer: infinite loop guard hit"}]
    assert run_one(NonfiniteLoss, records) == []
