import math

from streams import VOCAB, run_one, stream

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.loss_above_chance import LossAboveChance


def test_ce_far_above_uniform_guess():
    [finding] = run_one(LossAboveChance, stream(300, faults={"ce_above_chance": 1}))
    assert finding.step == 1
    assert finding.evidence["field"] == "loss_ce" and finding.evidence["vocab_size"] == VOCAB
    assert finding.evidence["ratio"] > 1.5
    assert finding.evidence["ln_vocab"] == math.log(VOCAB)


def test_wordlm_loss_without_components_judged_at_finish():
    # The RNN log: loss 17.7-19.5 at the start, vocab 33278 (ln = 10.41).
    records = [{"step": 200 * i, "loss": v} for i, v in enumerate([17.74, 18.27, 18.02, 18.11], 1)]
    [finding] = run_one(LossAboveChance, records, RunFacts(vocab_size=33278))
    assert finding.step == 200 and finding.evidence["field"] == "loss"
    assert round(finding.evidence["ratio"], 2) == round(18.065 / math.log(33278), 2)


def test_kd_total_is_not_compared_with_ln_vocab():
    # A KD total of ~20 (the seed) is CE + KD + feature terms, not a cross-entropy.
    records = [{"step": s, "loss": 20.0, "loss_kd": 9.0} for s in range(1, 20)]
    assert run_one(LossAboveChance, records, RunFacts(vocab_size=50257)) == []
    records = [{"step": s, "loss": 20.0} for s in range(1, 20)] + [{"step": 20, "eval_kd": 9.0}]
    found = run_one(LossAboveChance, records, RunFacts(vocab_size=50257))
    assert len(found) == 1  # a plain `loss` with no components anywhere is a CE
    # ...unless the run's config says its `loss` is a KD total (the seed's tqdm bar: loss=21.5).
    facts = RunFacts(vocab_size=50257, loss_is_combined=True)
    assert run_one(LossAboveChance, records, facts) == []


def test_healthy_no_vocab_and_missing_are_silent():
    assert run_one(LossAboveChance, stream(500)) == []
    records = stream(300, faults={"ce_above_chance": 1}, with_facts_records=False)
    assert run_one(LossAboveChance, records) == []
    assert run_one(LossAboveChance, stream(300, drop={"loss", "loss_ce"})) == []
