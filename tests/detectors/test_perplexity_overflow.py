import math

from streams import run_one, stream

from distill_doctor.detectors.perplexity_overflow import PerplexityOverflow


def test_seed_ppl_is_exp_of_training_loss_not_eval_loss():
    records = [
        {"step": 1000, "loss": 20.0},
        {"step": 1000, "eval_loss": 101.40, "eval_kd": 21.14},
        {"step": 1000, "ppl": 485165195.0},
    ]
    [finding] = run_one(PerplexityOverflow, records)
    evidence = finding.evidence
    assert evidence["matches"] == "loss" and evidence["nearest_value"] == 20.0
    assert abs(evidence["ln_ppl"] - 20.0) < 1e-6 and evidence["latest_eval_loss"] == 101.40
    assert "not of eval_loss 101.4" in finding.message


def test_ppl_of_combined_loss_fires_even_when_small():
    [finding] = run_one(PerplexityOverflow, stream(1000, faults={"ppl_from_total": 300}))
    assert finding.step == 300
    assert finding.evidence["matches"] == "loss" and finding.evidence["ppl"] < 1e6
    assert finding.evidence["ce"] < finding.evidence["nearest_value"]


def test_overflow_to_inf():
    [finding] = run_one(PerplexityOverflow, [{"step": 3, "loss": 800.0, "eval_ppl": math.inf}])
    assert finding.evidence["ppl"] == "inf" and "overflowed" in finding.message


def test_huge_exp_of_ce_fires_once_per_episode():
    # The RNN log: ppl 50880577 = exp(17.74), its CE, reported at every log line.
    values = [17.74, 18.27, 18.02, 18.11]
    records = [{"step": i, "loss": v, "ppl": math.exp(v)} for i, v in enumerate(values)]
    [finding] = run_one(PerplexityOverflow, records)
    assert finding.step == 0 and finding.evidence["matches"] == "loss"


def test_healthy_nan_and_missing_are_silent():
    assert run_one(PerplexityOverflow, stream(2000)) == []
    assert run_one(PerplexityOverflow, [{"step": 1, "loss": math.nan, "ppl": math.nan}]) == []
    no_ppl = stream(500, faults={"ppl_from_total": 100}, drop={"ppl"})
    assert run_one(PerplexityOverflow, no_ppl) == []


def test_near_match_names_the_closest_loss():
    # The seed's fixture: ppl = exp(20.0) while its running training loss reads 21.46.
    records = [
        {"step": 100, "loss": 21.46},
        {"step": 100, "eval_loss": 101.40, "eval_ppl": 485165195.0},
    ]
    [finding] = run_one(PerplexityOverflow, records)
    assert finding.evidence["matches"] is None and finding.evidence["nearest"] == "loss"
    assert "the exp() of the training loss, not of eval_loss 101.4" in finding.message
    assert "logged nearby is 21.46, 7% from ln(ppl)" in finding.message


def test_perplexity_of_a_loss_that_is_no_cross_entropy_says_so():
    # Issue 8: a KD loss summed over tokens (2242) or a regression loss (3e8) is no CE.
    for loss in (2242.0, 3.1e8):
        [finding] = run_one(PerplexityOverflow, [{"step": 5, "loss": loss, "ppl": math.inf}])
        assert finding.evidence["ce_like"] is False
    [finding] = run_one(PerplexityOverflow, [{"step": 5, "loss": 17.7, "ppl": math.exp(17.7)}])
    assert finding.evidence["ce_like"] is True
