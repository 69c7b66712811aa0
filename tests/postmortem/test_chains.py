"""The perplexity chain names the cause its finding's evidence supports, and no other."""

from distill_doctor.detectors.perplexity_overflow import PerplexityOverflow
from distill_doctor.findings import Finding, Severity
from distill_doctor.postmortem.chains import ChainInputs, find_chains


def chain_for(evidence: dict) -> str:
    finding = Finding("perplexity-overflow", "DD211", Severity.WARNING, "ppl", evidence, step=7)
    inputs = ChainInputs({"perplexity-overflow": finding}, None, None, None)
    [chain] = find_chains(inputs)
    assert chain.symptom.endswith("at step 7")
    return chain.diagnosis


def test_exp_of_the_kd_total_beside_a_ce_is_the_wrong_loss():
    text = chain_for({"ppl": 4.85e8, "matches": "loss", "ce": 3.2})
    assert "wrong loss" in text and "combined loss" in text and "3.2" in text


def test_exp_of_the_training_loss_beside_an_eval_loss_is_the_wrong_loss():
    text = chain_for({"ppl": 4.85e8, "matches": None, "nearest": "loss", "latest_eval_loss": 101.4})
    assert "exp() of the training loss" in text and "101.4" in text


def test_exp_of_a_plain_lm_loss_blames_the_loss_not_the_formula():
    # A word-level LM's loss is its CE: a huge ppl means a bad model, not a wrong formula.
    text = chain_for({"ppl": 5.09e7, "matches": "loss", "ce": None})
    assert "wrong loss" not in text and "worse than a uniform guess" in text


def test_the_seed_finding_and_its_chain_name_the_same_loss():
    # The seed's ppl 485,165,195 = exp(20.0) beside a running training loss of 21.46 and an
    # eval loss of 101.4: the finding and the chain both say "exp() of the training loss".
    detector = PerplexityOverflow()
    detector.update({"step": 100, "loss": 21.46})
    [finding] = detector.update({"step": 100, "eval_loss": 101.4, "eval_ppl": 485165195.0})
    [chain] = find_chains(ChainInputs({finding.id: finding}, None, None, None))
    for text in (finding.message, chain.diagnosis):
        assert "exp() of the training loss" in text and "101.4" in text and "21.46" in text
    assert "no exact loss" not in finding.message


def test_perplexity_of_a_summed_loss_is_not_called_worse_than_random():
    text = chain_for({"ppl": "inf", "matches": None, "nearest": None, "ce_like": False})
    assert "no per-token cross-entropy" in text and "uniform guess" not in text
