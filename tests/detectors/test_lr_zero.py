from streams import run_one, stream

from distill_doctor.detectors.base import RunFacts
from distill_doctor.detectors.lr_zero import LrZero


def test_fires_once_where_lr_drops_with_share_left():
    [finding] = run_one(LrZero, stream(1000, faults={"lr_zero": 100}))
    assert finding.step == 100
    assert finding.evidence["share_left"] == 0.9
    assert finding.evidence["peak_lr"] > 4e-6  # the warmup peak reached before step 100
    assert finding.evidence["planned"] is True


def test_without_plan_decides_at_finish_from_last_step():
    records = stream(1000, faults={"lr_zero": 400}, with_facts_records=False)
    detector = LrZero()
    assert [f for r in records for f in detector.update(r)] == []
    [finding] = detector.finish()
    assert finding.step == 400 and finding.evidence["share_left"] == 0.6
    assert finding.evidence["planned"] is False


def test_plan_from_facts():
    records = stream(1000, faults={"lr_zero": 500}, with_facts_records=False)
    [finding] = run_one(LrZero, records, RunFacts(planned_steps=4000))
    assert finding.evidence["share_left"] == 0.875 and finding.evidence["total_steps"] == 4000


def test_seed_lr_never_positive():
    records = [{"step": s, "lr": 0.0, "loss": 20.0} for s in range(10, 300, 10)]
    [finding] = run_one(LrZero, records, RunFacts(planned_steps=4687))
    assert finding.step == 10 and finding.evidence["peak_lr"] == 0.0
    assert finding.evidence["share_left"] > 0.99


def test_tiny_lr_relative_to_peak_counts_as_zero():
    records = [{"step": s, "lr": 1e-4 if s < 50 else 5e-8} for s in range(1, 200)]
    [finding] = run_one(LrZero, records)
    assert finding.step == 50 and finding.evidence["lr"] == 5e-8


def test_linear_decay_to_zero_at_end_is_healthy():
    assert run_one(LrZero, stream(1000)) == []
    decay = [{"step": s, "lr": 2e-5 * (1 - s / 900)} for s in range(50, 901, 50)]
    assert run_one(LrZero, decay, RunFacts(planned_steps=900)) == []
    assert run_one(LrZero, decay) == []


def test_warmup_starting_at_zero_is_healthy():
    records = [{"step": 0, "lr": 0.0}] + [{"step": s, "lr": 1e-5} for s in range(1, 100)]
    assert run_one(LrZero, records, RunFacts(planned_steps=100)) == []


def test_recovery_then_relapse_gives_two_findings():
    lrs = [1e-4] * 10 + [0.0] * 10 + [1e-4] * 10 + [0.0] * 70
    records = [{"step": i + 1, "lr": lr} for i, lr in enumerate(lrs)]
    findings = run_one(LrZero, records, RunFacts(planned_steps=100))
    assert [f.step for f in findings] == [11, 31]


def test_missing_lr_disables():
    assert run_one(LrZero, stream(300, drop=frozenset({"lr"}))) == []


def test_rounded_lr_reaching_zero_at_the_end_is_healthy():
    # Printed with 4 decimals: the decay's last tenth-thousandths show as 0 (issue 8).
    lrs = [0.0003, 0.0003, 0.0002, 0.0002, 0.0002, 0.0001, 0.0001, 0.0, 0.0, 0.0]
    records = [{"step": 100 * (i + 1), "lr": lr} for i, lr in enumerate(lrs)]
    assert run_one(LrZero, records) == []
    # The same print with the schedule cut at a third of the run is the seed's failure.
    cut = [0.0003, 0.0002, 0.0001] + [0.0] * 7
    records = [{"step": 100 * (i + 1), "lr": lr} for i, lr in enumerate(cut)]
    [finding] = run_one(LrZero, records)
    assert finding.step == 400 and finding.evidence["share_left"] == 0.6


def test_deepspeed_skipped_first_steps_are_not_a_dead_lr():
    warning = "tried to get lr value before scheduler/optimizer started stepping, returning lr=0"
    records = [{"step": s, "lr": 0.0, "loss": 2.0} for s in range(1, 8)]
    records.insert(0, {"step": 1, "warning": warning})
    records += [{"step": s, "lr": 2e-5, "loss": 1.9} for s in range(8, 100)]
    assert run_one(LrZero, records, RunFacts(planned_steps=100)) == []
    # Without the warning, a few zeros before the LR ever rose are waited out too.
    assert run_one(LrZero, records[1:], RunFacts(planned_steps=1000)) == []
