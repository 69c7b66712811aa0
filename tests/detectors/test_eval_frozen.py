from streams import run_one, stream

from distill_doctor.detectors.eval_frozen import EvalFrozen


def test_fires_at_third_identical_eval_with_first_step():
    [finding] = run_one(EvalFrozen, stream(1000, faults={"eval_frozen": 300}))
    assert finding.step == 300
    assert finding.evidence["evaluations"] == 3 and finding.evidence["last_step"] == 500
    assert finding.evidence["metric"] == "eval_loss"


def test_seed_evals():
    records = [
        {
            "step": s,
            "eval_loss": 101.40,
            "eval_kd": 21.14,
            "eval_feature": 40.79,
            "eval_attention": 0.49,
        }
        for s in (1000, 2000, 3000, 4000)
    ]
    [finding] = run_one(EvalFrozen, records)
    assert finding.step == 1000 and finding.evidence["value"] == 101.4


def test_float32_jitter_in_the_seventh_digit_is_still_frozen():
    values = [1.3862943649291992, 1.3862942457199097, 1.3862943649291992]
    records = [{"step": 250 * (i + 1), "eval_loss": v} for i, v in enumerate(values)]
    assert len(run_one(EvalFrozen, records)) == 1


def test_two_repeats_or_repeating_accuracy_is_not_frozen():
    records = [{"step": s, "eval_loss": 2.5, "eval_accuracy": 0.5} for s in (100, 200)]
    records.append({"step": 300, "eval_loss": 2.4, "eval_accuracy": 0.5})
    records.append({"step": 400, "eval_loss": 2.3, "eval_accuracy": 0.5})
    assert run_one(EvalFrozen, records) == []


def test_healthy_and_no_eval_are_silent():
    assert run_one(EvalFrozen, stream(2000)) == []
    assert run_one(EvalFrozen, [{"step": s, "loss": 2.0} for s in range(100)]) == []
